"""Chain and DA reads behind the look-up pages: a node's bond and fee credit, the rewards epochs with their
payloads (cached by commitment: a payload never changes under its commitment), an account's claimed amount.

These feed look-ups and plots only; the verify and claim pages read the chain and DA themselves."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from attribution.chain.errors import ChainError
from attribution.da.client import DAClient
from attribution.errors import AttributionError
from attribution.indexer.explorer.config import ExplorerConfig
from attribution.rewards import RewardsError, checksum
from attribution.rewards.epochs import ProposalInfo, RewardsChain

__all__ = ["Epoch", "ChainView"]


@dataclass(frozen=True)
class Epoch:
    """One proposed rewards epoch (the latest proposal of it) with its payload when DA has it."""

    epoch: int
    from_block: int
    to_block: int
    state: str
    proposal: ProposalInfo
    payload: dict[str, Any] | None


class ChainView:
    """Reads of one deployment for the explorer."""

    def __init__(self, config: ExplorerConfig, da: DAClient, *, cache_size: int = 64) -> None:
        self.c = config.contracts
        self.rewards = RewardsChain(self.c, da)
        self._payloads: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def node(self, node: str) -> dict[str, Any]:
        """Bond, fee credit, activity and the ledger's next seq of `node`."""
        try:
            stake = self.c.nodes.node(node)
            return {"active": self.c.nodes.is_active(node), "feeCredit": str(self.c.rewards.fee_credit(node)),
                    "nextSeq": self.c.ledger.next_seq(node),
                    "bond": {"bonded": str(stake.bonded), "unbonding": str(stake.unbonding),
                             "unbondableAt": stake.unbondable_at}}
        except ChainError as e:
            raise AttributionError(f"cannot read node {node} from the chain: {e}") from e

    def _payload(self, p: ProposalInfo) -> dict[str, Any] | None:
        with self._lock:
            if p.commitment in self._payloads:
                return self._payloads[p.commitment]
        try:
            payload = self.rewards.payload_of(p)
        except RewardsError:
            return None
        with self._lock:
            self._payloads[p.commitment] = payload
            while len(self._payloads) > self._cache_size:
                self._payloads.popitem(last=False)
        return payload

    def epochs(self) -> list[Epoch]:
        """Every proposed epoch (latest proposal each; vetoed ones marked), oldest first."""
        try:
            status = self.rewards.status()
            latest: dict[int, ProposalInfo] = {}
            for p in self.rewards.proposals():
                latest[p.epoch] = p
        except ChainError as e:
            raise AttributionError(f"cannot read the rewards epochs: {e}") from e
        states = {int(e["epoch"]): str(e["state"]) for e in status["epochs"]}
        out = []
        for epoch, p in sorted(latest.items()):
            payload = self._payload(p)
            out.append(Epoch(epoch, int(payload["fromBlock"]) if payload else -1,
                             int(payload["toBlock"]) if payload else -1, states.get(epoch, "unknown"), p, payload))
        return out

    def account(self, account: str) -> dict[str, Any]:
        """An account's amount per epoch, cumulative in the claimable root, claimed and claimable."""
        account = checksum(account)
        epochs = []
        for e in self.epochs():
            row = next((a for a in (e.payload or {}).get("accounts", []) if a["account"] == account), None)
            epochs.append({"epoch": e.epoch, "state": e.state, "amount": row["amount"] if row else "0",
                           "cumulative": row["cumulative"] if row else "0"})
        current = self.c.rewards.current_epoch()
        claimed = self.c.rewards.claimed(account)
        cumulative = 0
        if current:
            now = next((x for x in epochs if x["epoch"] == current and x["state"] == "claimable"), None)
            cumulative = int(now["cumulative"]) if now else 0
        return {"account": account, "epochs": epochs, "currentEpoch": current, "cumulative": str(cumulative),
                "claimed": str(claimed), "claimable": str(max(0, cumulative - claimed))}

    def shares(self) -> tuple[int, int]:
        """(nodeShareBps, adapterShareBps) now."""
        return self.c.rewards.shares()
