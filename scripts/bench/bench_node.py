"""Node serving benchmark, attribution on vs off (same as `loraledger bench node`); see node/bench/node.py."""
import sys

from node.bench.node import main

raise SystemExit(main(sys.argv[1:]))
