"""Attribution core benchmark (same as `loraledger bench attribution`); see node/bench/store.py."""
import sys

from node.bench.store import main

raise SystemExit(main(sys.argv[1:]))
