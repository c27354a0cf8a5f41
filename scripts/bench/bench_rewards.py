"""Rewards benchmark (same as `loraledger bench rewards`); see node/bench/rewards.py."""
import sys

from node.bench.rewards import main

raise SystemExit(main(sys.argv[1:]))
