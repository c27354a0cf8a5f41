"""The node's dispute responder, built from settings: it runs inside `loraledger node run` (`disputes.respond =
true`, the default) and answers every challenge against the node (docs/disputes.md "Node side").

It signs with the node's key through the batcher's `TxManager` when the batcher runs in the same process (one
nonce owner for the key), else through its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.chain import connect_chain, signer_params
from node.errors import UsageError
from node.settings import Settings

if TYPE_CHECKING:
    from attribution.chain.txmgr import TxManager
    from attribution.responder import Responder, ResponderMetrics

__all__ = ["build_responder", "close_responder"]

logger = logging.getLogger(__name__)


def state_path(settings: Settings) -> Path:
    """Where the responder keeps its cursor: beside the record store."""
    return Path(str(settings.store.path) + ".responder.json")


def build_responder(settings: Settings, store: Any, *, metrics: ResponderMetrics | None = None,
                    txmgr: TxManager | None = None) -> Responder | None:
    """A `Responder` (not started) for the node's `store` and the `[chain]` deployment, or None when
    `disputes.respond` is off or the deployment has no `BatchDisputes`. Raises `UsageError` naming what to fix."""
    from attribution.chain.errors import ChainError
    from attribution.chain.txmgr import TxManager, TxMgrConfig
    from attribution.da.client import DAClient
    from attribution.responder import AnswerSource, Responder, ResponderConfig

    ds, bs = settings.disputes, settings.batcher
    if not ds.respond:
        logger.warning("disputes.respond = false: nobody answers challenges against this node for it")
        return None
    try:
        chain = connect_chain(settings, signer=signer_params(settings, dev_index=settings.node.node_dev_index))
        dep = chain.need_deployment()
        contracts = chain.contracts
        if contracts.disputes is None:
            logger.warning("the deployment has no BatchDisputes: no challenge can reach this node, responder off")
            return None
        if txmgr is None:
            assert chain.account is not None  # connect loaded the signer it was given
            txmgr = TxManager(chain.client, chain.account, TxMgrConfig(
                tip_wei=bs.tip_wei, fee_cap_multiple=bs.fee_cap_multiple, resubmit_after_s=bs.resubmit_after_s))
    except ChainError as e:
        raise UsageError(f"dispute responder: {e}; fix [chain] or set disputes.respond = false") from e
    if bytes.fromhex(txmgr.account.address[2:]) != bytes(store.node):
        raise UsageError(f"dispute responder: the signing key is {txmgr.account.address} but the store belongs to "
                         f"node 0x{bytes(store.node).hex()}; use that node's key")
    da = DAClient(bs.da_url, max_retries=2, api_key=bs.da_api_key.get_secret_value() if bs.da_api_key else None)
    answers = AnswerSource(store, contracts.ledger, da, start_block=dep.deploy_block)
    config = ResponderConfig(poll_interval_s=ds.poll_interval_s, confirmations=ds.confirmations,
                             alarm_margin_s=ds.alarm_margin_s, resubmit_after_s=bs.resubmit_after_s,
                             start_block=dep.deploy_block)
    return Responder(contracts.disputes, txmgr, answers, config, metrics, state_path(settings))


def close_responder(responder: Responder) -> None:
    """Stop the rounds (one under way finishes first), then close its DA client."""
    try:
        responder.stop()
    finally:
        responder.answers.da.close()
