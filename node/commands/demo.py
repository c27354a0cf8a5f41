"""`loraledger demo ...`: make the demo model and adapters locally (no download), or synthetic adapters for load tests.

Thin wrappers over `inference.demo`; torch and friends are imported only when a command runs.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from node.errors import UsageError

app = typer.Typer(help="Demo assets made locally: a small Llama + tokenizer trained on Python's own docs, LoRA "
                  "adapters trained on different stdlib texts, and synthetic adapters for load tests.",
                  no_args_is_help=True)

_console = Console(stderr=True)
DEFAULT_DIR = pathlib.Path(".demo")
DEFAULT_BASE = pathlib.Path(".demo/demo-llama")
DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj"
# = len(inference.demo.ADAPTER_MODULES) and tuple(inference.demo.PRESETS) (a unit test checks): argument errors are
# reported before torch is imported
N_ADAPTER_TEXTS = 16
PRESET_NAMES = ("demo", "tiny", "smoke")


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=_console, transient=True) as bar:

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        yield update


def _parse_ranks(ranks: str | None, rank: int) -> list[int]:
    if ranks is None:
        out = [rank]
    else:
        try:
            out = [int(r) for r in ranks.split(",") if r.strip()]
        except ValueError as e:
            raise UsageError(f"--ranks {ranks!r} must be comma-separated integers, e.g. 8,16,64") from e
    if not out or any(r <= 0 for r in out):
        raise UsageError(f"ranks must be positive integers, got {out}")
    return out


def _check_dir(d: pathlib.Path) -> None:
    if d.exists() and not d.is_dir():
        raise UsageError(f"--dir {d} exists and is not a directory; pass a new or existing directory")


@app.command("init")
def init(
    dir: Annotated[pathlib.Path, typer.Option("--dir", help="Where to write the demo assets.")] = DEFAULT_DIR,
    adapters: Annotated[int, typer.Option("--adapters", help="Trained adapters (1..16, one stdlib text each).")] = 8,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if a complete demo is already there.")] = False,
    preset: Annotated[str, typer.Option("--preset", help="'demo' (served), 'tiny' or 'smoke' (tests).")] = "demo",
    seed: Annotated[int, typer.Option("--seed", help="Seed for initialisation and training batches.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="torch threads while training (1: steady on a busy "
                                                           "machine; 2+ faster only on idle cores).")] = 1,
) -> None:
    """Build the demo base model, its tokenizer and trained adapters, and write manifest.json (idempotent)."""
    _check_dir(dir)
    if not 1 <= adapters <= N_ADAPTER_TEXTS:
        raise UsageError(f"--adapters {adapters} out of range: use 1..{N_ADAPTER_TEXTS}; for many adapters "
                         "use `loraledger demo synth`")
    if threads < 1:
        raise UsageError(f"--threads {threads} must be >= 1")
    if preset not in PRESET_NAMES:
        raise UsageError(f"--preset {preset!r} unknown: use one of {', '.join(PRESET_NAMES)}")
    from inference.demo import DemoError, init_demo  # torch: only once the arguments are known to be good
    try:
        with _progress() as progress:
            manifest, built = init_demo(dir, n_adapters=adapters, force=force, preset=preset, seed=seed,
                                        threads=threads, progress=progress)
    except DemoError as e:
        raise UsageError(str(e)) from e
    table = Table(title=f"demo assets in {dir} ({'built' if built else 'already complete, nothing done'})")
    for col in ("kind", "name", "id", "rank", "dataset"):
        table.add_column(col)
    m = manifest["model"]
    table.add_row("model", m["name"], m["model_id"], "", "")
    for ad in manifest["adapters"]:
        table.add_row("adapter", ad["name"], ad["adapter_id"], str(ad["rank"]), ad["dataset_id"][:18] + "…")
    Console().print(table)


@app.command("synth")
def synth(
    n: Annotated[int, typer.Option("--n", help="How many synthetic adapters to write.")],
    dir: Annotated[pathlib.Path, typer.Option("--dir", help="Catalogue directory to write them into.")],
    rank: Annotated[int, typer.Option("--rank", help="Rank of every adapter (ignored with --ranks).")] = 16,
    ranks: Annotated[str | None, typer.Option("--ranks", help="Comma-separated ranks cycled over adapters.")] = None,
    base: Annotated[pathlib.Path, typer.Option("--base", help="Base model directory whose config.json gives the "
                                                              "shapes.")] = DEFAULT_BASE,
    targets: Annotated[str, typer.Option("--targets", help="Comma-separated target modules.")] = DEFAULT_TARGETS,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same adapters and ids.")] = 0,
) -> None:
    """Write N random (seeded) peft adapters for load tests, plus a manifest.json with their ids."""
    _check_dir(dir)
    if n < 0:
        raise UsageError(f"--n {n} must be >= 0")
    rank_list = _parse_ranks(ranks, rank)
    target_list = [t.strip() for t in targets.split(",") if t.strip()]
    from inference.demo import DemoError, synth_adapters  # torch: only once the arguments are known to be good
    from inference.errors import InferenceError

    try:
        with _progress() as progress:
            manifest = synth_adapters(dir, n, base, ranks=rank_list, targets=target_list, seed=seed,
                                      progress=progress)
    except (DemoError, InferenceError) as e:
        raise UsageError(str(e)) from e
    Console().print(f"wrote {len(manifest['adapters'])} synthetic adapters (ranks {rank_list}) to {dir}")
