"""`loraledger rewards compute|publish|verify|claim|status|run`: the reward rule over the chain and DA (DESIGN.md
"Rewards"). Thin commands over `attribution.rewards.epochs.RewardsChain`.

- compute: the next (or a given) epoch, written as a report (CSV + JSON per account, node, adapter, dataset).
- publish: the same, then the payload to DA and `proposeRoot` with the debits (the poster signs).
- verify: recompute a proposed epoch from the chain and DA alone; exit 1 on any difference (what a watcher runs
  during the challenge window; the guardian vetoes when it fails).
- claim: a contributor's, owner's or operator's claim with its proof from the published payload.
- status: epochs and their windows, and an account's claimable and claimed amounts.
- run: publish epochs of N L2 blocks in order, never overlapping (APScheduler), until stopped.
"""

from __future__ import annotations

import csv
import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from node.commands._chain import (
    DeploymentOpt,
    DevAccountOpt,
    JsonOpt,
    KeystoreOpt,
    RpcOpt,
    chain_errors,
    connect,
    emit,
    in_units,
    parse_address,
    token_units,
)
from node.errors import UsageError

if TYPE_CHECKING:
    from attribution.rewards.epochs import ComputedEpoch, RewardsChain

app = typer.Typer(help="Rewards: compute, publish, verify and claim epochs of fees by the published rule.",
                  no_args_is_help=True)
log = logging.getLogger(__name__)

#: dev account of the devnet's rewards poster (deploy roles: 0 governance, 1 node, 2 poster, 3 guardian).
DEVNET_POSTER_ACCOUNT = 2

DaOpt = Annotated[str | None, typer.Option("--da-url", envvar="LORALEDGER_DA_URL",
                                           help="DA server / eigenda-proxy URL (default: the DA client's).")]
EpochOpt = Annotated[int | None, typer.Option("--epoch", help="Epoch number (default: the next one).")]
ToBlockOpt = Annotated[int | None, typer.Option("--to-block", help="Last L2 block of the epoch (default: head - "
                                                                   "confirmations).")]
ConfOpt = Annotated[int, typer.Option("--confirmations", help="Blocks behind the head an epoch may end.")]


@contextmanager
def _rewards(rpc_url: str | None, deployment: Path | None, da_url: str | None, *, sign: bool = False,
             keystore: Path | None = None, dev_account: int | None = None, confirmations: int = 0,
             default_dev_account: int | None = None) -> Iterator[tuple[RewardsChain, Any]]:
    from attribution.da.client import DEFAULT_URL, DAClient
    from attribution.rewards import RewardsError
    from attribution.rewards.epochs import RewardsChain

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per DA request would bury the answer
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=default_dev_account, sign=sign)
    from node.commands.da import da_api_key

    with DAClient(da_url or DEFAULT_URL, timeout=60.0, max_retries=3, backoff=0.2, api_key=da_api_key()) as da, \
            chain_errors():
        try:
            yield RewardsChain(ctx.contracts, da, confirmations=confirmations), ctx
        except RewardsError as e:
            raise UsageError(str(e)) from e


def write_report(epoch: ComputedEpoch, out_dir: Path) -> list[Path]:
    """The epoch's report: payload.json plus accounts/nodes/adapters/datasets CSV files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    res = epoch.result
    files = []

    def table(name: str, header: list[str], rows: list[list[Any]]) -> None:
        path = out_dir / name
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        files.append(path)

    roles = ["node", "adapter", "dataset", "treasury"]
    table("accounts.csv", ["account", "epoch_amount", *roles, "cumulative"],
          [[a, res.amounts.get(a, 0), *[res.roles.get(a, {}).get(r, 0) for r in roles], v]
           for a, v in sorted(res.cumulative.items())])
    table("nodes.csv", ["node", "records", "owed", "credit", "debit", "short"],
          [[n.node, n.records, n.owed, n.credit, n.debit, n.short] for n in res.nodes.values()])
    table("adapters.csv", ["adapter_id", "records", "tokens", "fees", "owner", "datasets", "unassigned"],
          [["0x" + k.hex(), *[v.get(c, 0) for c in ("records", "tokens", "fees", "owner", "datasets",
                                                     "unassigned")]] for k, v in sorted(res.adapters.items())])
    table("datasets.csv", ["dataset_id", "amount"], [["0x" + k.hex(), v] for k, v in sorted(res.datasets.items())])
    path = out_dir / "payload.json"
    path.write_bytes(epoch.payload_bytes or b"{}")
    files.append(path)
    return files


def _summary(epoch: ComputedEpoch) -> dict[str, Any]:
    res = epoch.result
    return {"epoch": epoch.plan.epoch, "fromBlock": epoch.plan.from_block, "toBlock": epoch.plan.to_block,
            "batches": len(res.batches), "counted": sum(b.counted for b in res.batches), "records": res.records,
            "debits": str(res.debits), "total": str(res.total), "dust": str(res.dust),
            "accounts": len(res.cumulative), "misattributed": sum(len(m.seqs) for m in res.misattributed),
            "root": None if epoch.tree is None else "0x" + epoch.tree.root.hex(),
            "nodes": {n: d.to_json() for n, d in res.nodes.items()}}


@app.command("compute")
def compute(epoch: EpochOpt = None, to_block: ToBlockOpt = None,
            out: Annotated[Path | None, typer.Option("--out", help="Report directory (default: "
                                                                   "rewards-epoch-N).")] = None,
            confirmations: ConfOpt = 0, rpc_url: RpcOpt = None, deployment: DeploymentOpt = None,
            da_url: DaOpt = None, as_json: JsonOpt = False) -> None:
    """Compute an epoch from the chain and DA and write its report (CSV + JSON); proposes nothing."""
    with _rewards(rpc_url, deployment, da_url, confirmations=confirmations) as (rc, _):
        computed = rc.compute(rc.plan(epoch, to_block))
    files = write_report(computed, out or Path(f"rewards-epoch-{computed.plan.epoch}"))
    emit({**_summary(computed), "report": [str(f) for f in files]}, as_json, f"epoch {computed.plan.epoch}")


@app.command("publish")
def publish(epoch: EpochOpt = None, to_block: ToBlockOpt = None,
            out: Annotated[Path | None, typer.Option("--out", help="Also write the report here.")] = None,
            confirmations: ConfOpt = 0, rpc_url: RpcOpt = None, deployment: DeploymentOpt = None,
            da_url: DaOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
            as_json: JsonOpt = False) -> None:
    """Compute the epoch, put its payload on DA and propose its root with the debits (signed by the poster)."""
    with _rewards(rpc_url, deployment, da_url, sign=True, keystore=keystore, dev_account=dev_account,
                  confirmations=confirmations, default_dev_account=DEVNET_POSTER_ACCOUNT) as (rc, ctx):
        computed = rc.compute(rc.plan(epoch, to_block))
        p = rc.publish(computed, account=ctx.client.account)
    if out is not None:
        write_report(computed, out)
    emit({**_summary(computed), "proposal": p.to_json()}, as_json, f"epoch {p.epoch} proposed")


@app.command("verify")
def verify(epoch: Annotated[int, typer.Option("--epoch", help="The proposed epoch to check.")],
           rpc_url: RpcOpt = None, deployment: DeploymentOpt = None, da_url: DaOpt = None,
           as_json: JsonOpt = False) -> None:
    """Recompute a proposed epoch from the chain and DA alone; exit 1 on any difference (veto it), 0 if equal."""
    with _rewards(rpc_url, deployment, da_url) as (rc, _):
        check = rc.verify(epoch)
    if as_json:
        typer.echo(json.dumps(check.to_json(), indent=2))
    else:
        typer.echo(f"epoch {epoch}: {'ok' if check.ok else 'DIFFERS'} (root 0x{check.proposal.root.hex()})")
        for d in check.differences:
            typer.echo(f"  - {d}")
    if not check.ok:
        raise typer.Exit(1)


@app.command("claim")
def claim(account: Annotated[str | None, typer.Option("--account", help="Whose reward to claim (default: the "
                                                                           "signer).")] = None,
          rpc_url: RpcOpt = None, deployment: DeploymentOpt = None, da_url: DaOpt = None,
          keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None, as_json: JsonOpt = False) -> None:
    """Claim an account's unclaimed reward against the current root (proof from the published payload)."""
    with _rewards(rpc_url, deployment, da_url, sign=True, keystore=keystore, dev_account=dev_account) as (rc, ctx):
        who = parse_address(account, "--account") if account else ctx.sender
        paid = rc.claim(who, sender=ctx.client.account)
        balance = ctx.contracts.token.balance_of(who)
        data = {"account": who, "paid": str(paid), "balance": str(balance)}
        if not as_json:
            data = in_units(data, ("paid", "balance"), token_units(ctx.contracts.token))
    emit(data, as_json, "claimed")


@app.command("status")
def status(account: Annotated[str | None, typer.Option("--account", help="Also show this account's amounts.")]
           = None, rpc_url: RpcOpt = None, deployment: DeploymentOpt = None, da_url: DaOpt = None,
           as_json: JsonOpt = False) -> None:
    """Epochs (pending, claimable, vetoed, superseded) and an account's cumulative, claimed and claimable."""
    who = parse_address(account, "--account") if account else None
    with _rewards(rpc_url, deployment, da_url) as (rc, ctx):
        data = rc.status(who)
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        units = token_units(ctx.contracts.token)
    t = Table(title=f"rewards (current epoch {data['currentEpoch']}; paid {units(data['totalClaimed'])} of "
                    f"{units(data['totalDebited'])} debited)")
    for col in ("epoch", "state", "root", "total", "claimableAt"):
        t.add_column(col)
    for e in data["epochs"]:
        t.add_row(str(e["epoch"]), e["state"], e["root"], units(e["total"]), str(e["claimableAt"]))
    Console(width=200).print(t)
    if "account" in data:
        emit(in_units(data["account"], ("cumulative", "claimed", "claimable"), units), False, "account")


def due_epoch(rc: RewardsChain, epoch_blocks: int) -> tuple[int, int] | None:
    """(epoch, to_block) of the next epoch when `epoch_blocks` final blocks are there and no proposal is in its
    window; else None."""
    proposals = rc.proposals()
    if proposals and not proposals[-1].vetoed:
        head_ts = int(rc.c.rewards.client.w3.eth.get_block("latest")["timestamp"])
        at = proposals[-1].claimable_at
        if at == 0 or head_ts < at:  # open (not sealed yet) or in its window
            return None
    head = rc.c.rewards.client.block_number() - 1 - rc.confirmations  # an end block lies before the head
    from attribution.rewards import RewardsError

    try:
        plan = rc.plan(to_block=head)
    except RewardsError:  # not one block since the previous epoch yet
        return None
    end = plan.from_block + epoch_blocks - 1
    return (plan.epoch, end) if end <= head else None


@app.command("run")
def run(epoch_blocks: Annotated[int, typer.Option("--epoch-blocks", min=1, help="L2 blocks per epoch.")] = 1800,
        interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between checks.")] = 30.0,
        once: Annotated[bool, typer.Option("--once", help="Publish at most one due epoch and exit.")] = False,
        confirmations: ConfOpt = 0, rpc_url: RpcOpt = None, deployment: DeploymentOpt = None,
        da_url: DaOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None) -> None:
    """Publish epochs of --epoch-blocks L2 blocks, in order and never overlapping, as they become final."""
    from apscheduler.schedulers.background import BackgroundScheduler

    with _rewards(rpc_url, deployment, da_url, sign=True, keystore=keystore, dev_account=dev_account,
                  confirmations=confirmations, default_dev_account=DEVNET_POSTER_ACCOUNT) as (rc, ctx):
        def tick() -> bool:
            due = due_epoch(rc, epoch_blocks)
            if due is None:
                return False
            computed = rc.compute(rc.plan(due[0], due[1]))
            if computed.tree is None:
                log.info("epoch %d (blocks %d..%d) has no fees; waiting", due[0], computed.plan.from_block, due[1])
                return False
            p = rc.publish(computed, account=ctx.client.account)
            typer.echo(f"epoch {p.epoch}: blocks {computed.plan.from_block}..{due[1]}, root 0x{p.root.hex()}")
            return True

        if once:
            tick()
            return
        stop = threading.Event()
        sched = BackgroundScheduler()
        # one job, never overlapping itself: epochs are proposed strictly in order
        sched.add_job(tick, "interval", seconds=interval, max_instances=1, coalesce=True)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        sched.start()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            sched.shutdown(wait=True)
