"""Indexer benchmark (same as `loraledger bench indexer`); see node/bench/indexer.py."""
import sys

from node.bench.indexer import main

raise SystemExit(main(sys.argv[1:]))
