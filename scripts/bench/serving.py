"""Serving benchmark (same as `loraledger bench serving`): python scripts/bench/serving.py [--quick] [--json PATH]."""
import sys

from inference.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
