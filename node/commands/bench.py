"""`loraledger bench ...`: run the benchmarks. Each prints a table and can write JSON (`--json PATH`).

The benchmarks live in the `node.bench` package (outside the libraries they measure), each exposing
`main(argv) -> int`; `scripts/bench/bench_*.py` call the same functions, so
`python scripts/bench/bench_da.py --quick` and `loraledger bench da --quick` are one thing.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Benchmarks: each prints a table and writes JSON with --json PATH (baselines measured in "
                  "the same run).", no_args_is_help=True)

# command name -> (module exposing `main(argv: list[str]) -> int`, the line `loraledger bench --help` shows)
BENCHES: dict[str, tuple[str, str]] = {
    "attribution": ("node.bench.store", "Store appends/s, Merkle tree build + proofs, payload bytes per record "
                                         "(pass --help for options)."),
    "da": ("node.bench.da", "DA server put/get MB/s with and without KZG, GET p99 during a 16 MiB put (pass "
                                   "--help for options)."),
    "ledger-cost": ("node.bench.ledger", "Gas per record of postBatch at 1k/10k/100k records vs one tx per "
                                                "record, on anvil (pass --help)."),
    "serving": ("node.bench.serving", "Multi-adapter serving tokens/s, TTFT, cold loads, against transformers and peft "
                                   "(pass --help)."),
    "gemm": ("node.bench.gemm", "Base weight GEMMs: F.linear vs oneDNN packed, MKL packed, inductor freezing, "
                                "per row count (pass --help)."),
    "lora": ("node.bench.lora", "LoRA kernels of one decode step (slot-major bmm over runs vs segment matmul), "
                                "forced and as routed (pass --help)."),
    "node": ("node.bench.node", "HTTP serving req/s and p50/p99 with attribution on vs off, same run (pass --help for "
                           "options)."),
    "indexer": ("node.bench.indexer", "Indexer catch-up records verified/s (SQLite, PostgreSQL) and query "
                                             "p50/p99 (pass --help for options)."),
    "rewards": ("node.bench.rewards", "Reward rule over 1,000,000 records (target <= 30 s), reward tree and "
                                             "every proof (pass --help)."),
}

# long runs, not in `bench all` (nor `make bench`)
SOAKS: dict[str, tuple[str, str]] = {
    "soak": ("node.bench.soak", "20,000 requests through a running node (store, batcher on): resident memory every "
                                "2,000, growth after warm-up (target <= 5 %) (pass --help)."),
}

# every argument, --help included, goes to the benchmark's own argparse
_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _main(name: str, argv: list[str]) -> int:
    return importlib.import_module({**BENCHES, **SOAKS}[name][0]).main(argv)


def _add_bench(name: str, help_text: str) -> None:
    """Register `loraledger bench NAME ARGS...`, which runs that benchmark's `main(ARGS)`."""

    def command(ctx: typer.Context) -> None:
        code = _main(name, list(ctx.args))
        if code:
            raise typer.Exit(code)

    app.command(name, help=help_text, context_settings=_PASSTHROUGH)(command)


for _name, (_, _help) in {**BENCHES, **SOAKS}.items():
    _add_bench(_name, _help)


@app.command("all")
def run_all(
    quick: bool = typer.Option(False, "--quick", help="Quick mode for every benchmark."),
    json_dir: str = typer.Option("bench-results", "--json-dir", help="Write <name>.json files here."),
) -> None:
    """Run every benchmark in turn and write one JSON file per benchmark into --json-dir."""
    import pathlib

    pathlib.Path(json_dir).mkdir(parents=True, exist_ok=True)
    failed = []
    for name in BENCHES:
        argv = (["--quick"] if quick else []) + ["--json", f"{json_dir}/{name}.json"]
        if _main(name, argv):
            failed.append(name)
    if failed:
        typer.echo(f"benchmarks failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
