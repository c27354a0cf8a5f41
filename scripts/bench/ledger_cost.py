"""Ledger cost benchmark (same as `loraledger bench ledger-cost`); see attribution/ledger_bench.py."""
import sys

if __name__ == "__main__":  # the guard matters: the DA server's KZG workers re-import the main module
    sys.path.pop(0)  # this script's directory: attribution.py there would shadow the `attribution` package
    from attribution.ledger_bench import main

    raise SystemExit(main(sys.argv[1:]))
