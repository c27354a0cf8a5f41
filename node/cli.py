"""The `loraledger` command line: one typer group per part, each a thin wrapper over library functions."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer
import typer.main
from typer import _click as click  # typer vendors its click
from typer.core import TyperGroup

from node.errors import UsageError

# Nothing is ever downloaded at run time: keep huggingface_hub (read by transformers/peft on import) offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# group name -> (module under node/commands, one-line help). Each module defines `app = typer.Typer(...)`.
# A group's module is imported only when that group runs (or its help is shown): `loraledger --help` and argument
# errors do not pay for web3, torch or ckzg.
_GROUPS: dict[str, tuple[str, str]] = {
    "assets": ("assets", "Asset owners: register datasets, base models and adapters, schedule prices, show."),
    "batcher": ("batcher", "The batcher: sealed records to DA and the L2 ledger, exactly once (inside `node run` "
                "unless batcher.enabled = false)."),
    "bench": ("bench", "Benchmarks: each prints a table and writes JSON (baselines measured in the same run)."),
    "contracts": ("contracts", "Contracts: deploy all and wire roles, show a deployment, list custom errors."),
    "da": ("da", "Data-availability layer: the Alt-DA server and put/get for operators."),
    "demo": ("demo", "Demo assets made locally: a small Llama, trained LoRA adapters, synthetic adapters."),
    "devnet": ("devnet", "Local devnet: anvil (OP-Stack mode), DA server, deployed contracts."),
    "dispute": ("dispute", "Disputes: challenge a node with a saved answer, show a dispute, answer a challenge."),
    "fees": ("fees", "Node operators: deposit fee credit, show a node's credit and the latest debits."),
    "indexer": ("indexer", "The indexer: follow the chain + DA for all nodes, verify every batch, serve queries."),
    "node": ("node", "The inference node: OpenAI-compatible serving with an attribution record per answer, and its "
             "batcher."),
    "records": ("records", "Inspect the node's attribution records (durable log)."),
    "rewards": ("rewards", "Rewards: compute, publish, verify and claim epochs of fees by the published rule."),
    "verify": ("verify", "Verify posted batches, records, nodes and saved answers from the chain and DA alone."),
    "watch": ("watch", "The challenger: follow every node's batches, verify them, take receipts, open disputes."),
}


class _LazyGroup(TyperGroup):
    """The root group: subcommand groups are built from their module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_GROUPS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _GROUPS and cmd_name not in self.commands:
            module = importlib.import_module(f"node.commands.{_GROUPS[cmd_name][0]}")
            command = typer.main.get_command(module.app)
            command.name = cmd_name
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in sorted(_GROUPS.items())])


app = typer.Typer(
    name="loraledger",
    help="Serve one base model with many LoRA adapters and attribute every answer on an OP-Stack L2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_LazyGroup,
    rich_markup_mode=None,  # plain help at the root: rich help would build (import) every group
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    """loraledger: LoRA serving with on-chain attribution."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # one INFO line per HTTP request / scheduler tick drowns what the node says
        for chatty in ("httpx", "apscheduler"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


def main() -> None:
    """Console-script entry point: runs the app; a `UsageError` becomes a message and exit code 2."""
    try:
        app()
    except UsageError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
