"""Ledger cost benchmark (same as `loraledger bench ledger-cost`); see node/bench/ledger.py."""
import sys

from node.bench.ledger import main

raise SystemExit(main(sys.argv[1:]))
