"""`loraledger bench ...`: run the benchmarks. Each prints a table and can write JSON (`--json PATH`).

The benchmark code lives beside what it measures and exposes `main(argv) -> int`; `scripts/bench/*.py` call the
same functions, so `python scripts/bench/da.py --quick` and `loraledger bench da --quick` are one thing.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Benchmarks: each prints a table and writes JSON with --json PATH (baselines measured in "
                  "the same run).", no_args_is_help=True)

# command name -> module exposing `main(argv: list[str]) -> int`
BENCHES: dict[str, str] = {
    "attribution": "attribution.bench",
    "da": "attribution.da.bench",
    "ledger-cost": "attribution.ledger_bench",
    "serving": "inference.bench",
    "node": "node.bench",
    "indexer": "attribution.indexer.bench",
    "rewards": "attribution.rewards_bench",
}

_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _run(name: str, argv: list[str]) -> None:
    module = importlib.import_module(BENCHES[name])
    code = module.main(argv)
    if code:
        raise typer.Exit(code)


@app.command("attribution", context_settings=_PASSTHROUGH)
def attribution(ctx: typer.Context) -> None:
    """Store appends/s, Merkle tree build + proofs, payload bytes per record (pass --help for options)."""
    _run("attribution", list(ctx.args))


@app.command("da", context_settings=_PASSTHROUGH)
def da(ctx: typer.Context) -> None:
    """DA server put/get MB/s with and without KZG, GET p99 during a 16 MiB put (pass --help for options)."""
    _run("da", list(ctx.args))


@app.command("ledger-cost", context_settings=_PASSTHROUGH)
def ledger_cost(ctx: typer.Context) -> None:
    """Gas per record of postBatch at 1k/10k/100k records vs one tx per record, on anvil (pass --help)."""
    _run("ledger-cost", list(ctx.args))


@app.command("serving", context_settings=_PASSTHROUGH)
def serving(ctx: typer.Context) -> None:
    """Multi-adapter serving tokens/s, TTFT, cold loads, against transformers and peft (pass --help)."""
    _run("serving", list(ctx.args))


@app.command("node", context_settings=_PASSTHROUGH)
def node(ctx: typer.Context) -> None:
    """HTTP serving req/s and p50/p99 with attribution on vs off, same run (pass --help for options)."""
    _run("node", list(ctx.args))


@app.command("indexer", context_settings=_PASSTHROUGH)
def indexer(ctx: typer.Context) -> None:
    """Indexer catch-up records verified/s (SQLite, PostgreSQL) and query p50/p99 (pass --help for options)."""
    _run("indexer", list(ctx.args))


@app.command("rewards", context_settings=_PASSTHROUGH)
def rewards(ctx: typer.Context) -> None:
    """Reward rule over 1,000,000 records (target <= 30 s), reward tree and every proof (pass --help)."""
    _run("rewards", list(ctx.args))


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
        module = importlib.import_module(BENCHES[name])
        if module.main(argv):
            failed.append(name)
    if failed:
        typer.echo(f"benchmarks failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
