"""DA layer benchmark (same as `loraledger bench da`); see attribution/da/bench.py."""
import sys

if __name__ == "__main__":  # the guard matters: KZG worker processes re-import the main module
    sys.path.pop(0)  # this script's directory: attribution.py there would shadow the `attribution` package
    from attribution.da.bench import main

    raise SystemExit(main(sys.argv[1:]))
