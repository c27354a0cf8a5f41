"""The benchmarks, one module each (`loraledger bench NAME`, `scripts/bench/bench_NAME.py`): every one prints a
table, writes JSON with `--json PATH` and measures its baseline in the same run. Kept out of `inference` and
`attribution` so a serving node never imports them."""
