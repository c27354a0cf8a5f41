"""`loraledger indexer serve | sync | status`: follow a deployment's ledger and asset registry, verify every batch
from DA, and serve dApp queries (attribution/indexer). Storage: a SQLite file by default, PostgreSQL by a
`postgresql://` URL."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from attribution.chain.errors import ChainError
from attribution.da.client import DEFAULT_URL, DAClient
from attribution.errors import AttributionError
from node.chain import connect_chain
from node.commands._chain import RpcOpt
from node.errors import UsageError
from node.settings import load_settings

if TYPE_CHECKING:
    from attribution.chain.client import ChainClient
    from attribution.chain.deploy import Deployment

app = typer.Typer(help="The indexer: follow the chain + DA for all nodes, verify every batch, serve queries.",
                  no_args_is_help=True)
log = logging.getLogger(__name__)

DEFAULT_DB = Path(".loraledger/indexer.db")

DbOpt = Annotated[str, typer.Option("--db", envvar="LORALEDGER_INDEXER_DB",
                                    help="SQLite file path, or a postgresql://user@host:port/db URL.")]
DaOpt = Annotated[str, typer.Option("--da-url", envvar="LORALEDGER_DA_URL", help="DA server / eigenda-proxy URL.")]
DeployOpt = Annotated[Path | None, typer.Option(
    "--deployment", help="Deployment file (default: deployments/<chainId>.json): ledger, registry, disputes, deploy "
    "block.")]
ConfOpt = Annotated[int, typer.Option("--confirmations", min=0, help="Index only blocks this deep (reorg safety).")]
PageOpt = Annotated[int, typer.Option("--page-blocks", min=1, help="Blocks per eth_getLogs request.")]


def load_deployment(rpc_url: str | None, deployment_file: Path | None) -> tuple[ChainClient, Deployment]:
    """The chain client and the deployment file of the chain it serves."""
    settings = load_settings()
    try:
        ctx = connect_chain(settings, rpc_url=rpc_url, deployment_file=deployment_file)
    except ChainError as e:
        raise UsageError(f"{e}; pass --deployment FILE or --rpc-url of the deployed chain") from e
    return ctx.client, ctx.need_deployment()


def build_indexer(db: str, rpc_url: str | None, da_url: str, deployment_file: Path | None, confirmations: int,
                  page_blocks: int) -> object:
    """Open the database (migrating it) and bind an `Indexer` to the deployment."""
    from attribution.indexer.db import IndexerDBError, open_engine
    from attribution.indexer.follower import Indexer, IndexerError

    chain, dep = load_deployment(rpc_url, deployment_file)
    try:
        engine = open_engine(db)
        return Indexer(engine, chain, dep.address("AttributionLedger"), DAClient(da_url, max_retries=2),
                       registry=dep.addresses.get("AssetRegistry"), deploy_block=dep.deploy_block,
                       confirmations=confirmations, page_blocks=page_blocks,
                       disputes=dep.addresses.get("BatchDisputes"))
    except (IndexerDBError, IndexerError, ChainError) as e:
        raise UsageError(str(e)) from e


@app.command("serve")
def serve_command(db: DbOpt = str(DEFAULT_DB), rpc_url: RpcOpt = None, da_url: DaOpt = DEFAULT_URL,
                  deployment: DeployOpt = None, confirmations: ConfOpt = 2, page_blocks: PageOpt = 2000,
                  host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
                  port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8700,
                  poll_s: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between rounds.")] = 1.0,
                  explorer: Annotated[bool, typer.Option(
                      "--explorer/--no-explorer", help="Serve the explorer's pages at /explorer/.")] = True,
                  public_rpc_url: Annotated[str | None, typer.Option(
                      "--public-rpc-url", help="L2 RPC URL the explorer's pages use from the browser (default: "
                                               "--rpc-url).")] = None,
                  public_da_url: Annotated[str | None, typer.Option(
                      "--public-da-url", help="DA URL the explorer's pages use from the browser (default: "
                                              "--da-url).")] = None,
                  ) -> None:
    """Follow the deployment from its deploy block and serve the query API (OpenAPI docs at /docs) and the
    explorer's pages (/explorer/)."""
    import uvicorn

    from attribution.http_server import HttpLimits, serve_config
    from attribution.indexer.api import create_app
    from attribution.indexer.follower import Indexer

    indexer = build_indexer(db, rpc_url, da_url, deployment, confirmations, page_blocks)
    assert isinstance(indexer, Indexer)
    extend = None
    if explorer:
        extend = explorer_extension(indexer, rpc_url, deployment, public_rpc_url, public_da_url or da_url)
    # header/body/send timeouts and a per-address connection cap, as the node and the DA server have
    uvicorn.Server(serve_config(create_app(indexer.engine, indexer, poll_s=poll_s, extend=extend), host, port,
                                HttpLimits(), log_level="info")).run()


def explorer_extension(indexer: object, rpc_url: str | None, deployment_file: Path | None,
                       public_rpc_url: str | None, public_da_url: str) -> Any:
    """`create_app`'s `extend` hook that mounts the explorer of the indexer's deployment."""
    from attribution.indexer.explorer import explorer_config, mount_explorer
    from attribution.indexer.explorer.chainview import ChainView
    from attribution.indexer.explorer.config import ExplorerError
    from attribution.indexer.follower import Indexer

    assert isinstance(indexer, Indexer)
    chain, dep = load_deployment(rpc_url, deployment_file)
    if public_rpc_url is None and chain.safe_url != chain.rpc_url:
        raise UsageError("--rpc-url carries a provider key, which the explorer would hand to every browser: pass "
                         "--public-rpc-url with a URL meant for the public")
    try:
        config = explorer_config(dep, dep.bind(chain), rpc_url=public_rpc_url or chain.rpc_url, da_url=public_da_url)
    except (ExplorerError, ChainError) as e:
        raise UsageError(str(e)) from e
    view = ChainView(config, indexer.da)
    return lambda app: mount_explorer(app, config, view)


@app.command("sync")
def sync_command(db: DbOpt = str(DEFAULT_DB), rpc_url: RpcOpt = None, da_url: DaOpt = DEFAULT_URL,
                 deployment: DeployOpt = None, confirmations: ConfOpt = 2, page_blocks: PageOpt = 2000,
                 timeout_s: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 600,
                 ) -> None:
    """Index until caught up with the confirmed head and every batch verified, print the status, exit."""
    from attribution.indexer.disputes import DisputeReader
    from attribution.indexer.follower import Indexer
    from attribution.indexer.queries import Reader

    indexer = build_indexer(db, rpc_url, da_url, deployment, confirmations, page_blocks)
    assert isinstance(indexer, Indexer)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            stats = indexer.sync_once()
        except AttributionError as e:
            raise UsageError(str(e)) from e
        if stats.cursor >= stats.head - confirmations and stats.pending == 0:
            break
        if time.monotonic() > deadline:
            raise UsageError(f"not caught up after {timeout_s:.0f}s (cursor {stats.cursor}, head {stats.head}, "
                             f"{stats.pending} batches pending: is DA at {da_url} up?)")
        time.sleep(0.5)
    with indexer.engine.connect() as conn:
        typer.echo(json.dumps({**Reader().status(conn), "disputes": DisputeReader().counts(conn)}, indent=2))


@app.command("status")
def status_command(db: DbOpt = str(DEFAULT_DB)) -> None:
    """Print the index's cursor, record count, verdict totals and disputes per status."""
    from attribution.indexer.db import IndexerDBError, open_engine
    from attribution.indexer.disputes import DisputeReader
    from attribution.indexer.queries import Reader

    try:
        engine = open_engine(db)
    except IndexerDBError as e:
        raise UsageError(str(e)) from e
    with engine.connect() as conn:
        typer.echo(json.dumps({**Reader().status(conn), "disputes": DisputeReader().counts(conn)}, indent=2))
