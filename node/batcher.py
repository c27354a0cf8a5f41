"""The node's batcher, built from settings: one function for both places it runs, inside `loraledger node run`
(`batcher.enabled = true`, the default) and beside it as `loraledger batcher run`.

Either way the batcher opens its own handle on the node's record store (`appender=False`: batches only, the node
appends) and takes `<store>.batcher.lock` when it starts, so one store never has two batchers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from node.chain import connect_chain, signer_params
from node.errors import UsageError
from node.settings import Settings

if TYPE_CHECKING:
    from attribution.batcher import Batcher
    from attribution.batcher.metrics import BatcherMetrics
    from attribution.store import Batch

__all__ = ["build_batcher", "close_batcher", "start_batcher"]


def build_batcher(settings: Settings, *, store_path: Path | None = None, metrics: BatcherMetrics | None = None,
                  on_transition: Callable[[str, Batch], None] | None = None) -> Batcher:
    """A `Batcher` (not started) for the node's store, the `[chain]` deployment and the `[batcher]` settings.

    Its own chain connection (the one chain set-up) signs with the `[chain]` key, on the devnet anvil's dev account
    `node.node_dev_index`: the store's node. Raises `UsageError` naming what to fix."""
    from attribution.batcher import Batcher, BatcherConfig, BatcherError
    from attribution.chain.contracts import Ledger
    from attribution.chain.errors import ChainError, DeploymentError
    from attribution.chain.txmgr import TxManager, TxMgrConfig
    from attribution.da.client import DAClient
    from attribution.store import RecordStore, StoreError

    bs = settings.batcher
    try:
        chain = connect_chain(settings, signer=signer_params(settings, dev_index=settings.node.node_dev_index))
    except DeploymentError as e:
        raise UsageError(f"{e}; pass --deployment FILE") from e
    except ChainError as e:
        raise UsageError(str(e)) from e
    client, dep, account = chain.client, chain.need_deployment(), chain.account
    assert account is not None  # connect loaded the signer it was given
    try:
        ledger = Ledger(client, dep.addresses["AttributionLedger"])
        txmgr = TxManager(client, account, TxMgrConfig(tip_wei=bs.tip_wei, fee_cap_multiple=bs.fee_cap_multiple,
                                                       resubmit_after_s=bs.resubmit_after_s))
    except ChainError as e:
        raise UsageError(str(e)) from e
    try:
        config = BatcherConfig(seal_interval_s=bs.seal_interval_s, seal_min_records=bs.seal_min_records,
                               max_batch_records=bs.max_batch_records, confirmations=bs.confirmations,
                               poll_interval_s=bs.poll_interval_s, resubmit_after_s=bs.resubmit_after_s,
                               retention_s=bs.retention_s, start_block=dep.deploy_block)
    except BatcherError as e:
        raise UsageError(str(e)) from e
    path = store_path or settings.store.path
    try:
        store = RecordStore(path, appender=False, archive_dir=settings.store.archive_dir)
    except StoreError as e:
        raise UsageError(f"cannot open record store {path}: {e}") from e
    da = DAClient(bs.da_url, max_retries=2, api_key=bs.da_api_key.get_secret_value() if bs.da_api_key else None)
    try:
        return Batcher(store, da, ledger, txmgr, config, metrics=metrics, on_transition=on_transition)
    except (BatcherError, ChainError) as e:
        da.close()
        store.close()
        raise UsageError(str(e)) from e


def start_batcher(batcher: Batcher, hint: str) -> None:
    """Start the batcher's jobs; another batcher on the same store is a `UsageError` ending with `hint`."""
    from attribution.batcher import BatcherError

    try:
        batcher.start()
    except BatcherError as e:
        raise UsageError(f"{e}; {hint}") from e


def close_batcher(batcher: Batcher) -> None:
    """Stop the jobs (a running pass finishes first), then close its DA client and its store handle."""
    try:
        batcher.stop()
    finally:
        batcher.da.close()
        batcher.store.close()
