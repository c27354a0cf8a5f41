"""Attribution core benchmark (same as `loraledger bench attribution`); see attribution/bench.py."""
import sys

sys.path.pop(0)  # this script's directory: its name would shadow the `attribution` package
from attribution.bench import main  # noqa: E402

raise SystemExit(main(sys.argv[1:]))
