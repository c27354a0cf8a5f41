"""DA layer benchmark (same as `loraledger bench da`); see node/bench/da.py."""
import sys

from node.bench.da import main

if __name__ == "__main__":  # the guard matters: KZG worker processes re-import the main module
    raise SystemExit(main(sys.argv[1:]))
