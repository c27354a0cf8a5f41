"""`loraledger verify batch ID | record NODE SEQ | node ADDRESS | answer FILE`: check posted batches from the chain
and DA alone (attribution/verify/). `batch` and `answer` also show the batch's disputes (BatchDisputes, when the
deployment has it). Exit code 0 when everything verifies, 1 on any failing verdict (a batch marked unavailable
included, or a record not yet posted), 2 on bad input (one `error:` line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from attribution.chain.contracts import Ledger
from attribution.chain.disputes import BatchDisputes
from attribution.chain.errors import ChainError, DeploymentError
from attribution.da.client import DEFAULT_URL, DAClient
from attribution.hashing import is_address, to_checksum_address
from attribution.verify import DEFAULT_PAGE_BLOCKS, BatchCheck, RecordNotPostedError, Verifier, VerifyError
from attribution.verify.answers import AnswerError, load_answer, verify_answer
from attribution.verify.disputes import DisputeReport, batch_disputes
from node.chain import connect_chain
from node.commands._chain import RpcOpt
from node.errors import UsageError
from node.settings import load_settings

app = typer.Typer(help="Verify posted batches, records, nodes and saved answers from the chain and DA alone.",
                  no_args_is_help=True)

DaOpt = Annotated[str, typer.Option("--da-url", envvar="LORALEDGER_DA_URL", help="DA server / eigenda-proxy URL.")]
LedgerOpt = Annotated[str | None, typer.Option(
    "--ledger", help="AttributionLedger address (default: from deployments/<chainId>.json).")]
FromOpt = Annotated[int | None, typer.Option(
    "--from-block", help="First block to read events from (default: the deployment's deployBlock, else 0).")]
PageOpt = Annotated[int, typer.Option("--page-blocks", min=1, help="Blocks per eth_getLogs request.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DisputesOpt = Annotated[str | None, typer.Option(
    "--disputes", help="BatchDisputes address (default: from deployments/<chainId>.json; none with --ledger).")]


def _console() -> Console:
    return Console(width=200, soft_wrap=True)


def make_verifier(rpc_url: str | None, da_url: str, ledger: str | None, from_block: int | None,
                  page_blocks: int = DEFAULT_PAGE_BLOCKS, disputes: str | None = None) -> Verifier:
    """A `Verifier` from CLI options, falling back to settings and the deployment file (which also names the
    BatchDisputes whose disputes `batch` and `answer` show)."""

    settings = load_settings()
    if ledger is not None and not is_address(ledger):
        raise UsageError(f"--ledger {ledger!r} is not an address (0x + 40 hex digits)")
    if disputes is not None and not is_address(disputes):
        raise UsageError(f"--disputes {disputes!r} is not an address (0x + 40 hex digits)")
    try:
        chain = connect_chain(settings, rpc_url=rpc_url, load_deployment=ledger is None)
    except DeploymentError as e:
        raise UsageError(f"no ledger address: pass --ledger or deploy first ({e})") from e
    except ChainError as e:
        raise UsageError(str(e)) from e
    client, deploy_block = chain.client, 0
    if ledger is None:
        deployment = chain.need_deployment()
        ledger, deploy_block = deployment.address("AttributionLedger"), deployment.deploy_block
        disputes = disputes or deployment.addresses.get("BatchDisputes")
    da = DAClient(da_url, timeout=60.0, max_retries=3, backoff=0.2)
    start = deploy_block if from_block is None else from_block
    return Verifier(Ledger(client, ledger), da, from_block=start, page_blocks=page_blocks,
                    disputes=BatchDisputes(client, disputes, deploy_block=start) if disputes else None)


def _address(value: str) -> str:

    if not is_address(value):
        raise UsageError(f"{value!r} is not an address (0x + 40 hex digits)")
    return str(to_checksum_address(value))


def _table(checks: list[BatchCheck], title: str) -> Table:
    table = Table(title=title)
    for col in ("batch", "node", "seqs", "verdict", "detail"):
        table.add_column(col, overflow="fold")
    for c in checks:
        style = "green" if c.ok else "red"
        table.add_row(str(c.batch_id), c.node, f"{c.first_seq}..{c.first_seq + c.count - 1}",
                      f"[{style}]{c.verdict.value}[/{style}]", c.detail)
    return table


def _emit(data: dict[str, Any], as_json: bool, render: Any) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        render()


def _run(fn: Any) -> Any:
    try:
        return fn()
    except (VerifyError, ChainError) as e:
        if isinstance(e, RecordNotPostedError):
            typer.echo(f"pending: {e}", err=True)
            raise typer.Exit(1) from e
        raise UsageError(str(e)) from e


@app.command("batch")
def batch_command(batch_id: Annotated[int, typer.Argument(min=1, help="The batch id.")], rpc_url: RpcOpt = None,
                  da_url: DaOpt = DEFAULT_URL, ledger: LedgerOpt = None, from_block: FromOpt = None,
                  page_blocks: PageOpt = DEFAULT_PAGE_BLOCKS, as_json: JsonOpt = False,
                  disputes: DisputesOpt = None) -> None:
    """Verify one batch: DA payload, header and rebuilt root against the chain; and show its disputes (a batch
    marked unavailable earns nothing: exit 1)."""
    v = make_verifier(rpc_url, da_url, ledger, from_block, page_blocks, disputes)
    check: BatchCheck = _run(lambda: v.verify_batch(batch_id))
    contract = v.disputes
    found: DisputeReport | None = None if contract is None else _run(lambda: batch_disputes(contract, batch_id))

    def render() -> None:
        console = _console()
        console.print(_table([check], f"batch {batch_id}"))
        if found is None:
            console.print("disputes: not checked (no BatchDisputes in this deployment; pass --disputes)")
            return
        console.print(f"disputes: {found.summary()}")
        for line in found.lines():
            console.print(f"  {line}")
        if found.unavailable:
            console.print(f"[red]unavailable:[/red] BatchDisputes marked batch {batch_id} unavailable (the node did "
                          "not publish a challenged chunk on-chain): its records earn nothing in rewards")

    data = {**check.to_json(), "disputes": None if found is None else found.to_json()}
    _emit(data, as_json, render)
    raise typer.Exit(0 if check.ok and not (found is not None and found.unavailable) else 1)


@app.command("node")
def node_command(address: Annotated[str, typer.Argument(help="The node's address.")], rpc_url: RpcOpt = None,
                 da_url: DaOpt = DEFAULT_URL, ledger: LedgerOpt = None, from_block: FromOpt = None,
                 page_blocks: PageOpt = DEFAULT_PAGE_BLOCKS, as_json: JsonOpt = False) -> None:
    """Verify every batch of one node and that its seqs on-chain are gap-free."""
    node = _address(address)
    v = make_verifier(rpc_url, da_url, ledger, from_block, page_blocks)
    report = _run(lambda: v.verify_node(node))

    def render() -> None:
        console = _console()
        console.print(_table(report.checks, f"node {node}: {len(report.checks)} batches, nextSeq {report.next_seq}"))
        for gap in report.gaps:
            console.print(f"[red]gap:[/red] {gap}")
        bad = sum(not c.ok for c in report.checks)
        console.print("all ok" if report.ok else f"[red]{bad} failing batches, {len(report.gaps)} gaps[/red]")

    _emit(report.to_json(), as_json, render)
    raise typer.Exit(0 if report.ok else 1)


@app.command("record")
def record_command(node: Annotated[str, typer.Argument(help="The node's address.")],
                   seq: Annotated[int, typer.Argument(min=0, help="The record's seq.")], rpc_url: RpcOpt = None,
                   da_url: DaOpt = DEFAULT_URL, ledger: LedgerOpt = None, from_block: FromOpt = None,
                   page_blocks: PageOpt = DEFAULT_PAGE_BLOCKS, as_json: JsonOpt = False) -> None:
    """Open one record from its batch's DA payload, print it with its proof and `verifyRecord`'s answer."""
    address = _address(node)
    v = make_verifier(rpc_url, da_url, ledger, from_block, page_blocks)
    result = _run(lambda: v.verify_record(address, seq))

    def render() -> None:
        console = _console()
        console.print(_table([result.batch], f"record {seq} of {address}"))
        console.print_json(json.dumps(result.to_json()))

    _emit(result.to_json(), as_json, render)
    raise typer.Exit(0 if result.ok else 1)


@app.command("answer")
def answer_command(file: Annotated[Path, typer.Argument(help="Saved answer JSON: the node's response with its "
                                                             "`attribution`, and the prompt or messages.")],
                   rpc_url: RpcOpt = None, da_url: DaOpt = DEFAULT_URL, ledger: LedgerOpt = None,
                   from_block: FromOpt = None, page_blocks: PageOpt = DEFAULT_PAGE_BLOCKS,
                   as_json: JsonOpt = False, disputes: DisputesOpt = None) -> None:
    """Check a saved answer step by step: ioHash, leaf, receipt signer, batch on-chain and its disputes, DA
    payload, verifyRecord."""
    try:
        answer = load_answer(file)
    except AnswerError as e:
        raise UsageError(f"{file}: {e}") from e
    v = make_verifier(rpc_url, da_url, ledger, from_block, page_blocks, disputes)
    report = _run(lambda: verify_answer(answer, v))
    _emit(report.to_json(), as_json, lambda: typer.echo(report.text()))
    raise typer.Exit(0 if report.ok else 1)
