"""`loraledger batcher run|status`: the batcher standalone on the node's record store, and its pipeline state."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from attribution.batcher import Batcher, BatcherConfig, BatcherError, pipeline_status
from attribution.chain.contracts import Ledger
from attribution.chain.errors import ChainError, DeploymentError
from attribution.chain.keys import DEV_ROLE_INDEX, ENV_KEYSTORE_PASSWORD
from attribution.chain.txmgr import TxManager, TxMgrConfig
from attribution.da.client import DAClient
from attribution.store import Batch, RecordStore, StoreError
from node.chain import connect_chain, signer_params
from node.commands._chain import RpcOpt
from node.errors import UsageError
from node.settings import load_settings

app = typer.Typer(help="The batcher: sealed records to DA and the L2 ledger, exactly once.", no_args_is_help=True)
log = logging.getLogger(__name__)

#: Fault injection for tests only: "EVENT:N" SIGKILLs this process right after the N-th EVENT (sealed, dispersed,
#: submitted, broadcast, posted, final, reorged) - a real crash at an exact point of the state machine.
KILL_ENV = "LORALEDGER_BATCHER_FAULT_KILL_AT"

_DB_HELP = "Record store path (default: settings `store.path`)."


def _kill_hook() -> Any:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return None
    event, _, n = spec.partition(":")
    left = [int(n or "1")]

    def hook(ev: str, b: Batch) -> None:
        if ev == event:
            left[0] -= 1
            if left[0] <= 0:
                log.warning("fault injection: SIGKILL after %s of batch %d", ev, b.batch_id)
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


@app.command("run")
def run_command(
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    rpc_url: RpcOpt = None,
    da_url: Annotated[str | None, typer.Option("--da-url", help="DA URL (default: batcher.da_url).")] = None,
    deployment: Annotated[Path | None, typer.Option("--deployment", help="Deployment file (default: "
                                                    "deployments/<chainId>.json).")] = None,
    keystore: Annotated[Path | None, typer.Option("--keystore", help="Node operator keyfile (password in "
                                                  f"${ENV_KEYSTORE_PASSWORD}).")] = None,
    seal_interval: Annotated[float | None, typer.Option("--seal-interval", help="Seconds between seals.")] = None,
    seal_records: Annotated[int | None, typer.Option("--seal-records", help="Seal when this many wait.")] = None,
    max_batch_records: Annotated[int | None, typer.Option("--max-batch-records", help="Cap per batch.")] = None,
    confirmations: Annotated[int | None, typer.Option("--confirmations", help="Blocks deep for final.")] = None,
    poll_interval: Annotated[float | None, typer.Option("--poll-interval", help="Seconds between passes.")] = None,
    resubmit_after: Annotated[float | None, typer.Option("--resubmit-after", help="Seconds before a stuck tx "
                                                         "is replaced with bumped fees.")] = None,
    until_drained: Annotated[bool, typer.Option("--until-drained", help="Exit 0 once every stored record is in a "
                                                "final batch.")] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="With --until-drained: give up (exit 1) "
                                                  "after this many seconds.")] = None,
) -> None:
    """Run the batcher against the node's store (the node may keep appending; only one batcher at a time)."""
    batcher = _build(db, rpc_url, da_url, deployment, keystore, seal_interval, seal_records, max_batch_records,
                     confirmations, poll_interval, resubmit_after)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        batcher.start()
    except BatcherError as e:
        batcher.store.close()
        raise UsageError(str(e)) from e
    deadline = None if timeout is None else time.monotonic() + timeout
    code = 0
    try:
        while not stop.wait(0.2):
            if batcher.fatal is not None:
                typer.echo(f"error: {batcher.fatal}", err=True)
                code = 3
                break
            if until_drained:
                st = pipeline_status(batcher.store)
                if st["backlog_records"] == 0 and st["next_seq"] > 0:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    typer.echo(f"error: not drained after {timeout:g}s: {json.dumps(st)}", err=True)
                    code = 1
                    break
    finally:
        batcher.stop()
        batcher.da.close()
        batcher.store.close()
    if code:
        raise typer.Exit(code)


def _build(db: Path | None, rpc_url: str | None, da_url: str | None, deployment: Path | None,
           keystore: Path | None, seal_interval: float | None, seal_records: int | None,
           max_batch_records: int | None, confirmations: int | None, poll_interval: float | None,
           resubmit_after: float | None) -> Batcher:
    settings = load_settings()
    bs = settings.batcher
    try:
        chain = connect_chain(settings, rpc_url=rpc_url, deployment_file=deployment,
                              signer=signer_params(settings, keystore=keystore, dev_index=DEV_ROLE_INDEX["node"]))
    except DeploymentError as e:
        raise UsageError(f"{e}; pass --deployment FILE") from e
    except ChainError as e:
        raise UsageError(str(e)) from e
    client, dep = chain.client, chain.need_deployment()
    try:
        account = chain.account
        assert account is not None  # connect loaded the signer it was given
        ledger = Ledger(client, dep.addresses["AttributionLedger"])
        txmgr = TxManager(client, account, TxMgrConfig(
            tip_wei=bs.tip_wei, fee_cap_multiple=bs.fee_cap_multiple,
            resubmit_after_s=resubmit_after if resubmit_after is not None else bs.resubmit_after_s))
    except ChainError as e:
        raise UsageError(str(e)) from e
    try:
        config = BatcherConfig(
            seal_interval_s=seal_interval if seal_interval is not None else bs.seal_interval_s,
            seal_min_records=seal_records if seal_records is not None else bs.seal_min_records,
            max_batch_records=max_batch_records if max_batch_records is not None else bs.max_batch_records,
            confirmations=confirmations if confirmations is not None else bs.confirmations,
            poll_interval_s=poll_interval if poll_interval is not None else bs.poll_interval_s,
            resubmit_after_s=resubmit_after if resubmit_after is not None else bs.resubmit_after_s,
            retention_s=bs.retention_s, start_block=dep.deploy_block)
    except BatcherError as e:
        raise UsageError(str(e)) from e
    path = db or settings.store.path
    try:
        store = RecordStore(path, appender=False, archive_dir=settings.store.archive_dir)
    except StoreError as e:
        raise UsageError(f"cannot open record store {path}: {e}") from e
    try:
        da_key = bs.da_api_key.get_secret_value() if bs.da_api_key else None
        return Batcher(store, DAClient(da_url or bs.da_url, max_retries=2, api_key=da_key), ledger, txmgr, config,
                       on_transition=_kill_hook())
    except BatcherError as e:
        store.close()
        raise UsageError(str(e)) from e


@app.command("status")
def status_command(
    db: Annotated[Path | None, typer.Option("--db", help=_DB_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the pipeline state from the store: backlog, batches by state, pending batches, last final."""
    path = db or load_settings().store.path
    try:
        store = RecordStore(path, readonly=True)
    except StoreError as e:
        raise UsageError(f"cannot open record store {path}: {e}") from e
    try:
        st = pipeline_status(store)
    except StoreError as e:
        raise UsageError(str(e)) from e
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    counts = ", ".join(f"{k} {v}" for k, v in st["batches"].items())
    typer.echo(f"records: {st['next_seq']} stored, {st['unbatched_records']} not yet sealed, "
               f"{st['backlog_records']} not yet final (last final seq {st['last_final_seq']})")
    typer.echo(f"batches: {counts}")
    for p in st["pending"]:
        typer.echo(f"  batch {p['batch_id']}: seqs [{p['first_seq']}, {p['first_seq'] + p['count']}) {p['state']}"
                   + (f" tx {p['tx_hash']} nonce {p['nonce']} ({p['submissions']} submission(s))"
                      if p["tx_hash"] else ""))
    lf = st["last_final"]
    if lf:
        typer.echo(f"last final: batch {lf['batch_id']} (ledger batch {lf['onchain_batch_id']}), gas {lf['gas_used']}"
                   f" = {lf['gas_per_record']:.3f}/record, L1 fee {lf['l1_fee']} wei")
    store_st = st["store"]
    typer.echo(f"store: {store_st['used_bytes']} bytes" + (" DISK ALARM" if store_st["disk_alarm"] else ""))
