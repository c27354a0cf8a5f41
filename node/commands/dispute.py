"""`loraledger dispute open|status|respond`: a person with a saved answer challenges the node that signed it, and a
node answers an omission challenge (docs/disputes.md). Thin commands over `attribution.chain.disputes`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from node.commands._chain import (
    DeploymentOpt,
    DevAccountOpt,
    JsonOpt,
    KeystoreOpt,
    RpcOpt,
    chain_errors,
    connect,
    emit,
    parse_b32,
)
from node.errors import UsageError

if TYPE_CHECKING:  # web3 is imported when a command runs: `--help` stays fast
    from attribution.chain.setup import ChainContext

app = typer.Typer(help="Disputes: challenge a node with a saved answer, show a dispute, answer a challenge.",
                  no_args_is_help=True)

#: dev account that challenges by default on the local devnet (a client, not the node).
DEVNET_CHALLENGER_ACCOUNT = 5
#: dev account of the devnet's node operator (answers challenges).
DEVNET_NODE_ACCOUNT = 1


def _disputes(ctx: ChainContext) -> Any:
    if ctx.contracts.disputes is None:
        raise UsageError("this deployment has no BatchDisputes; redeploy with `loraledger contracts deploy`")
    return ctx.contracts.disputes


def _show(disputes: Any, dispute_id: int, tx_hash: str | None = None, slashed: int | None = None) -> dict[str, Any]:
    data = disputes.dispute(dispute_id).as_json()
    if tx_hash is not None:
        data["txHash"] = tx_hash
    if slashed is not None:
        data["slashed"] = str(slashed)
    return data


@app.command("open")
def open_command(
    receipt: Annotated[Path, typer.Option("--receipt", help="Saved answer JSON (the node's response with its "
                                                           "attribution object), as `verify answer` reads it.")],
    batch: Annotated[int | None, typer.Option("--batch", help="The batch holding the seq (default: found from the "
                                                             "ledger's events; 0 = unposted).")] = None,
    rpc_url: RpcOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Challenge the answer's node for omission with its receipt (sends the omission bond). A posted seq opens a
    challenge the node must answer; an unposted one past the maximum posting delay slashes at once."""
    from attribution.verify.answers import AnswerError, load_answer

    try:
        answer = load_answer(receipt)
    except (AnswerError, OSError) as e:
        raise UsageError(f"cannot read {receipt}: {e}") from e
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_CHALLENGER_ACCOUNT, sign=True)
    disputes = _disputes(ctx)
    with chain_errors():
        batch_id = batch if batch is not None else ctx.contracts.ledger.batch_id_for(answer.node, answer.seq) or 0
        result = disputes.open_omission(answer.record.abi_values(), answer.receipt, batch_id)
        data = _show(disputes, result.dispute_id, result.tx.tx_hash, result.slashed)
    emit(data, as_json, "dispute opened" if data["status"] == "open" else "node slashed")


@app.command("status")
def status_command(
    dispute_id: Annotated[int, typer.Argument(help="The dispute id (from `dispute open` or a ChallengeOpened "
                                                   "event).", min=1)],
    rpc_url: RpcOpt = None, deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show a dispute: kind, status (open, answered, upheld), node, batch, seq or chunk, deadline."""
    ctx = connect(rpc_url, deployment)
    disputes = _disputes(ctx)
    with chain_errors():
        if dispute_id > disputes.dispute_count():
            raise UsageError(f"no dispute {dispute_id}: the latest id is {disputes.dispute_count()}")
        data = _show(disputes, dispute_id)
    emit(data, as_json, f"dispute {dispute_id}")


@app.command("respond")
def respond_command(
    dispute_id: Annotated[int, typer.Argument(help="The omission challenge to answer.", min=1)],
    proof: Annotated[Path, typer.Option("--proof", help="JSON list of 0x-hex proof nodes of the challenged leaf in "
                                                       "its batch's root (e.g. from `verify record --json`).")],
    rpc_url: RpcOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    deployment: DeploymentOpt = None, as_json: JsonOpt = False,
) -> None:
    """Answer an omission challenge with the leaf's Merkle proof (anyone may; the bond goes to the node)."""
    try:
        nodes = json.loads(proof.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {proof}: {e}; pass a JSON list of 0x-hex strings") from e
    if not isinstance(nodes, list):
        raise UsageError(f"{proof} must hold a JSON list of 0x-hex strings, got {type(nodes).__name__}")
    path = [parse_b32(str(n), "--proof") for n in nodes]
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_NODE_ACCOUNT, sign=True)
    disputes = _disputes(ctx)
    with chain_errors():
        result = disputes.respond_omission(dispute_id, path)
        data = _show(disputes, result.dispute_id, result.tx.tx_hash)
    emit(data, as_json, "challenge answered")
