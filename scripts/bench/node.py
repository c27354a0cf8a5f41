"""Node serving benchmark, attribution on vs off (same as `loraledger bench node`); see node/bench.py."""
import sys

if __name__ == "__main__":
    sys.path.pop(0)  # this script's directory: attribution.py there would shadow the `attribution` package
    from node.bench import main

    raise SystemExit(main(sys.argv[1:]))
