"""The `loraledger` command line: one typer group per part, each a thin wrapper over library functions."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from node.errors import UsageError

# Nothing is ever downloaded at run time: keep huggingface_hub (read by transformers/peft on import) offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(
    name="loraledger",
    help="Serve one base model with many LoRA adapters and attribute every answer on an OP-Stack L2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# (module under node/commands, group name). Each module defines `app = typer.Typer(...)`.
_GROUPS: list[tuple[str, str]] = [
    ("bench", "bench"),
    ("da", "da"),
    ("devnet", "devnet"),
    ("contracts", "contracts"),
    ("assets", "assets"),
    ("fees", "fees"),
    ("records", "records"),
    ("demo", "demo"),
    ("verify", "verify"),
    ("node", "node"),
    ("indexer", "indexer"),
    ("rewards", "rewards"),
]


def _register_groups() -> None:
    for module_name, group in _GROUPS:
        module = importlib.import_module(f"node.commands.{module_name}")
        app.add_typer(module.app, name=group)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    """loraledger: LoRA serving with on-chain attribution."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


_register_groups()


def main() -> None:
    """Console-script entry point: runs the app; a `UsageError` becomes a message and exit code 2."""
    try:
        app()
    except UsageError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
