"""Rewards benchmark (same as `loraledger bench rewards`); see attribution/rewards_bench.py."""
import sys

if __name__ == "__main__":
    sys.path.pop(0)  # this script's directory: attribution.py there would shadow the `attribution` package
    from attribution.rewards_bench import main

    raise SystemExit(main(sys.argv[1:]))
