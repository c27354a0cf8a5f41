"""Base weight GEMM benchmark (same as `loraledger bench gemm`).

python scripts/bench/bench_gemm.py [--model medium] [--threads 1] [--quick] [--json PATH]
"""
import sys

from node.bench.gemm import main

raise SystemExit(main(sys.argv[1:]))
