"""`loraledger watch`: the challenger (docs/disputes.md, "Watcher"). Follows every node's batches, verifies each
from DA, takes clients' receipts (a file or directory, `POST /receipts`, the SDK's `LedgerClient.send_receipt`),
and opens the dispute each lie calls for through the tx manager. The work is `attribution.watch`; this module wires
settings, flags, the signer and the HTTP server."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from node.commands._chain import DeploymentOpt, DevAccountOpt, KeystoreOpt, RpcOpt, chain_errors, connect
from node.errors import UsageError

app = typer.Typer(help="The challenger: follow every node's batches, verify them from DA, take clients' receipts "
                       "and open disputes against nodes that lie.", no_args_is_help=False)
log = logging.getLogger(__name__)

#: dev account the watcher signs with on the local devnet by default (neither a node nor a dispute CLI client)
DEVNET_WATCHER_ACCOUNT = 6
DEFAULT_STATE = Path(".loraledger/watch.db")


@app.command()
def watch(
    rpc_url: RpcOpt = None,
    da_url: Annotated[str | None, typer.Option("--da-url", envvar="LORALEDGER_DA_URL",
                                               help="DA server / eigenda-proxy URL payloads are read from "
                                                    "(default: the devnet's).")] = None,
    deployment: DeploymentOpt = None, keystore: KeystoreOpt = None, dev_account: DevAccountOpt = None,
    state: Annotated[Path, typer.Option("--state", help="The watcher's SQLite file: what it followed, the receipts "
                                                        "it holds, what it challenged (never twice).")
                     ] = DEFAULT_STATE,
    receipts: Annotated[Path | None, typer.Option(
        "--receipts", help="A saved answer (JSON) or a directory of them (*.json), read every round; new files "
                           "are picked up as they appear.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address of the HTTP endpoint (POST /receipts, GET "
                                                     "/v1/status, /metrics).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Its port; 0 = no HTTP endpoint.")] = 8800,
    grace: Annotated[int, typer.Option("--grace", min=0, help="Seconds (chain time) after a batch is posted before "
                                                              "a payload DA lacks is challenged.")] = 600,
    confirmations: Annotated[int, typer.Option("--confirmations", min=0,
                                               help="Follow only blocks this deep (reorg safety).")] = 2,
    page_blocks: Annotated[int, typer.Option("--page-blocks", min=1, help="Blocks per eth_getLogs request.")] = 2000,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between rounds.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Run one round, print the status as JSON and exit (no HTTP "
                                                      "endpoint).")] = False,
) -> None:
    """Watch every node of the deployment and challenge lies: availability for a payload DA lacks (after
    --grace), commission at once for a misplaced record or a leaf that conflicts with a held receipt, equivocation
    for two receipts of one seq, omission for a receipt whose record is not in its batch or is unposted past the
    maximum posting delay; settle expired challenges and withdraw bonds and refunds."""
    from attribution.chain.txmgr import TxManager
    from attribution.da.client import DEFAULT_URL, DAClient
    from attribution.watch import WatchConfig, Watcher, WatchState, WatchStateError

    if receipts is not None and not receipts.exists():
        raise UsageError(f"--receipts {receipts} does not exist; pass a saved answer file or a directory of them")
    ctx = connect(rpc_url, deployment, keystore=keystore, dev_account=dev_account,
                  default_dev_account=DEVNET_WATCHER_ACCOUNT, sign=True)
    contracts = ctx.contracts
    if contracts.disputes is None:
        raise UsageError("this deployment has no BatchDisputes; redeploy with `loraledger contracts deploy`")
    dep = ctx.need_deployment()
    assert ctx.account is not None  # connect(sign=True) loaded it or raised
    with chain_errors():
        disputes = contracts.disputes.use_txmgr(TxManager(ctx.client, ctx.account))
    try:
        st = WatchState(state, chain_id=ctx.chain_id, ledger=contracts.ledger.address, disputes=disputes.address,
                        deploy_block=dep.deploy_block)
    except WatchStateError as e:
        raise UsageError(str(e)) from e
    config = WatchConfig(confirmations=confirmations, page_blocks=page_blocks, grace_s=grace,
                         receipts_path=receipts)
    watcher = Watcher(contracts.ledger, disputes, DAClient(da_url or DEFAULT_URL, max_retries=2), st,
                      deploy_block=dep.deploy_block, config=config)
    log.info("watching ledger %s on chain %d as %s (state %s)", contracts.ledger.address, ctx.chain_id,
             watcher.address, state)
    if once:
        with chain_errors():
            stats = watcher.run_once()
        typer.echo(json.dumps({**watcher.status(), "actions": stats.actions}, indent=2))
        return
    if port == 0:
        import threading

        from attribution.watch.api import run_loop

        run_loop(watcher, threading.Event(), threading.Event(), poll)
        return
    import uvicorn

    from attribution.http_server import HttpLimits, serve_config
    from attribution.watch.api import create_app

    typer.echo(f"watcher {watcher.address}: POST http://{host}:{port}/receipts, status /v1/status, /metrics",
               err=True)
    uvicorn.Server(serve_config(create_app(watcher, poll_s=poll), host, port, HttpLimits(), log_level="info")).run()
