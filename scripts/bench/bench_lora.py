"""LoRA kernel benchmark (same as `loraledger bench lora`).

python scripts/bench/bench_lora.py [--quick] [--json PATH]
"""
import sys

from node.bench.lora import main

raise SystemExit(main(sys.argv[1:]))
