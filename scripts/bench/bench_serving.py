"""Serving benchmark (same as `loraledger bench serving`).

python scripts/bench/bench_serving.py [--quick] [--json PATH]
"""
import sys

from node.bench.serving import main

raise SystemExit(main(sys.argv[1:]))
