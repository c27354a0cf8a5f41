"""`loraledger batcher run|status`: the batcher apart from the node on the node's record store (the node runs its own
unless `batcher.enabled = false`), and the pipeline state."""

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
from pydantic import ValidationError

from attribution.batcher import pipeline_status
from attribution.store import Batch, RecordStore, StoreError
from node.batcher import build_batcher, close_batcher, start_batcher
from node.chain import ENV_KEYSTORE_PASSWORD
from node.commands._chain import RpcOpt
from node.errors import UsageError
from node.settings import BatcherSettings, Settings, load_settings

app = typer.Typer(help="The batcher: sealed records to DA and the L2 ledger, exactly once (inside `node run` "
                  "unless batcher.enabled = false).", no_args_is_help=True)
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
    """Run the batcher apart from the node, on the node's store (set `batcher.enabled = false` in the node's
    settings first: `loraledger node run` runs its own batcher by default, and a store takes one batcher)."""
    settings = _settings(rpc_url, da_url, deployment, keystore, seal_interval, seal_records, max_batch_records,
                         confirmations, poll_interval, resubmit_after)
    batcher = build_batcher(settings, store_path=db, on_transition=_kill_hook())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        start_batcher(batcher, "set batcher.enabled = false in the node's settings to run the batcher apart")
    except UsageError:
        close_batcher(batcher)
        raise
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
        close_batcher(batcher)
    if code:
        raise typer.Exit(code)


def _settings(rpc_url: str | None, da_url: str | None, deployment: Path | None, keystore: Path | None,
              seal_interval: float | None, seal_records: int | None, max_batch_records: int | None,
              confirmations: int | None, poll_interval: float | None, resubmit_after: float | None) -> Settings:
    """The settings with the command's options over them (an option left out keeps the setting)."""
    settings = load_settings()
    chain = {k: v for k, v in (("rpc_url", rpc_url), ("deployment_file", deployment), ("keystore", keystore))
             if v is not None}
    given = {"da_url": da_url, "seal_interval_s": seal_interval, "seal_min_records": seal_records,
             "max_batch_records": max_batch_records, "confirmations": confirmations, "poll_interval_s": poll_interval,
             "resubmit_after_s": resubmit_after}
    try:
        bs = BatcherSettings.model_validate(settings.batcher.model_dump() | {k: v for k, v in given.items()
                                                                            if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        raise UsageError(f"--{_OPTION[str(first['loc'][0])]}: {first['msg']}") from e
    return settings.model_copy(update={"chain": settings.chain.model_copy(update=chain), "batcher": bs})


#: The option that sets each `[batcher]` setting (for error messages).
_OPTION = {"da_url": "da-url", "seal_interval_s": "seal-interval", "seal_min_records": "seal-records",
           "max_batch_records": "max-batch-records", "confirmations": "confirmations",
           "poll_interval_s": "poll-interval", "resubmit_after_s": "resubmit-after"}


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
