"""Rewards from the chain and DA alone: plan an epoch, compute it, publish it, verify it, claim from it.

    rc = RewardsChain(contracts, da)
    epoch = rc.compute(rc.plan())                 # batches of the epoch's L2 blocks, verified (unavailable per
                                                  # BatchDisputes at the end block: nothing); each record priced at
                                                  # its own timestamp; credit at the epoch's end block
    rc.publish(epoch, account=poster)             # payload -> DA, proposeRoot + addDebits pages + sealRoot
    rc.verify(n)                                  # recompute from chain + DA, compare with the proposal and payload
    rc.claim(account, sender=...)                 # proof from the published payload, claim against currentRoot

Epochs are consecutive (`epoch == currentEpoch + 1`; a vetoed epoch is proposed again under its number) and cover
consecutive L2 block ranges: epoch N covers `[proposal(N - 1).endBlock + 1, endBlock]` (the first starts at the
ledger's deployment block); the contract stores each proposal's `endBlock`. A node's credit is `creditAt(node,
endBlock)`: deposits up to the end block minus earlier debits and withdrawals, so a deposit landing between compute
and propose changes nothing; `verify` reads it in the block before the proposal opened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, cast

from attribution.chain.deploy import Contracts
from attribution.chain.errors import ChainError
from attribution.chain.history import RegistryHistory
from attribution.da.client import DAClient
from attribution.da.errors import DAError
from attribution.hashing import keccak256
from attribution.rewards import EpochBatch, EpochRewards, RewardsError, SharesSchedule, checksum, compute_rewards
from attribution.rewards.tree import RewardTree, build_payload, decode_payload, encode_payload, tree_from_payload
from attribution.verify import Verifier, VerifyError, batch_events

__all__ = ["UNAVAILABLE", "ProposalInfo", "EpochPlan", "ComputedEpoch", "EpochCheck", "RewardsChain"]

log = logging.getLogger(__name__)

#: The verdict of a batch that `BatchDisputes` marked unavailable by the epoch's end block (docs/rewards.md).
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ProposalInfo:
    """One `RootProposed` event and whether it was vetoed."""

    epoch: int
    root: bytes
    total: int
    commitment: bytes
    nodes: tuple[str, ...]
    debits: tuple[int, ...]
    claimable_at: int  # 0 while it is open (not sealed)
    block_number: int
    tx_hash: str
    vetoed: bool
    end_block: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"epoch": self.epoch, "root": "0x" + self.root.hex(), "total": str(self.total),
                "commitment": "0x" + self.commitment.hex(), "debits": {n: str(d) for n, d in
                                                                    zip(self.nodes, self.debits, strict=True)},
                "endBlock": self.end_block, "claimableAt": self.claimable_at, "blockNumber": self.block_number,
                "txHash": self.tx_hash, "vetoed": self.vetoed}


@dataclass(frozen=True)
class EpochPlan:
    """What an epoch covers and what it builds on."""

    epoch: int
    from_block: int
    to_block: int
    previous: ProposalInfo | None
    previous_cumulative: dict[str, int] = field(default_factory=dict)


@dataclass
class ComputedEpoch:
    """An epoch computed from the chain and DA: the rule's result, the tree and the payload to publish."""

    plan: EpochPlan
    result: EpochRewards
    tree: RewardTree | None
    payload: dict[str, Any]
    payload_bytes: bytes

    @property
    def proposal_args(self) -> tuple[list[str], list[int]]:
        """(nodes, debits) for the `addDebits` pages: every node with a non-zero debit, sorted."""
        items = sorted((n, d.debit) for n, d in self.result.nodes.items() if d.debit > 0)
        return [n for n, _ in items], [d for _, d in items]


@dataclass
class EpochCheck:
    """`verify`'s answer for one proposed epoch: the differences found (none = ok)."""

    epoch: int
    proposal: ProposalInfo
    differences: list[str]
    recomputed_root: bytes | None

    @property
    def ok(self) -> bool:
        """True when the proposal and its payload equal the recomputation."""
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"epoch": self.epoch, "ok": self.ok, "differences": self.differences,
                "proposal": self.proposal.to_json(),
                "recomputedRoot": None if self.recomputed_root is None else "0x" + self.recomputed_root.hex()}


class RewardsChain:
    """The reward rule wired to one deployment's contracts and a DA endpoint."""

    def __init__(self, contracts: Contracts, da: DAClient, *, confirmations: int = 0) -> None:
        self.c = contracts
        self.da = da
        self.confirmations = confirmations
        self.chain_id = contracts.rewards.client.chain_id
        self._history: RegistryHistory | None = None

    # -- reading proposals ------------------------------------------------------------------------------------

    def _events(self, name: str, to_block: int | str = "latest") -> Iterator[Any]:
        return self.c.rewards.events(name, to_block=to_block)

    def proposals(self) -> list[ProposalInfo]:
        """Every proposal in chain order: its `RootProposed`, the pages of `DebitsAdded` that followed it, its
        `RootSealed` (claimableAt; 0 while open) and whether a `RootVetoed` ended it."""
        out: list[ProposalInfo] = []
        pages: list[tuple[list[str], list[int]]] = []
        for e in self.c.rewards.events(["RootProposed", "DebitsAdded", "RootSealed", "RootVetoed"]):
            a = e.args
            if e.name == "RootProposed":
                out.append(ProposalInfo(int(a["epoch"]), bytes(a["root"]), int(a["total"]),
                                        bytes(a["payloadCommitment"]), (), (), 0, e.block_number, e.tx_hash, False,
                                        int(a["endBlock"])))
                pages = []
                continue
            if not out or int(a["epoch"]) != out[-1].epoch:
                continue
            last = out[-1]
            if e.name == "DebitsAdded":
                pages.append(([checksum(n) for n in a["nodes"]], [int(d) for d in a["debits"]]))
                out[-1] = replace(last, nodes=tuple(n for ns, _ in pages for n in ns),
                                  debits=tuple(d for _, ds in pages for d in ds))
            elif e.name == "RootSealed":
                out[-1] = replace(last, claimable_at=int(a["claimableAt"]))
            else:
                out[-1] = replace(last, vetoed=True)
        return out

    def proposal_of(self, epoch: int) -> ProposalInfo:
        """The last proposal of `epoch` (a vetoed epoch may be proposed again)."""
        found = [p for p in self.proposals() if p.epoch == epoch]
        if not found:
            raise RewardsError(f"epoch {epoch} was never proposed (latest epoch {self.c.rewards.latest_epoch()})")
        return found[-1]

    def payload_of(self, p: ProposalInfo) -> dict[str, Any]:
        """The rewards payload a proposal committed to, from DA."""
        try:
            data = self.da.get(p.commitment)
        except DAError as e:
            raise RewardsError(f"DA has no rewards payload for epoch {p.epoch} ({e}); the proposal cannot be "
                               "checked: the guardian should veto it") from e
        return decode_payload(data)

    def previous_of(self, epoch: int, before_block: int | None = None) -> ProposalInfo | None:
        """The proposal `epoch` builds on: the last non-vetoed one of `epoch - 1` (made before `before_block`)."""
        prev = [p for p in self.proposals() if p.epoch == epoch - 1 and not p.vetoed
                and (before_block is None or p.block_number < before_block)]
        return prev[-1] if prev else None

    # -- planning and computing -------------------------------------------------------------------------------

    def plan(self, epoch: int | None = None, to_block: int | None = None) -> EpochPlan:
        """The next epoch (or `epoch`) up to `to_block` (default: head - 1 - confirmations)."""
        if epoch is None:
            epoch = self.c.rewards.current_epoch() + 1  # consecutive; a vetoed epoch comes again under its number
        prev = self.previous_of(epoch)
        prev_payload = self.payload_of(prev) if prev is not None else None
        start = prev.end_block + 1 if prev is not None else int(self.c.ledger.deploy_block or 0)
        # The end block must lie before the block the proposal is executed in (the contract checks `endBlock <
        # block.number`, and a node's estimate runs at the head): the head itself is never an end block.
        head = self.c.rewards.client.block_number() - 1 - self.confirmations
        end = head if to_block is None else int(to_block)
        if end > head:
            raise RewardsError(f"to-block {end} is past the head minus {self.confirmations} confirmations ({head})")
        if end < start:
            raise RewardsError(f"epoch {epoch} would start at block {start} but end at {end}: wait for more blocks")
        cumulative = {a["account"]: int(a["cumulative"]) for a in prev_payload["accounts"]} if prev_payload else {}
        return EpochPlan(epoch, start, end, prev, cumulative)

    def history(self, to_block: int) -> RegistryHistory:
        """The AssetRegistry history read up to `to_block` (kept and extended between calls)."""
        if self._history is None:
            self._history = RegistryHistory.from_chain(self.c.assets, to_block=to_block)
        elif self._history.synced_block < to_block:
            self._history.sync(to_block)
        return self._history

    def shares(self, to_block: int) -> SharesSchedule:
        """The split parameters over time: the constructor's (read in the block before the first `SharesChanged`,
        or at `to_block` when there is none), then each `SharesChanged` from its `effectiveAt`."""
        events = list(self._events("SharesChanged", to_block=to_block))
        first = events[0].block_number - 1 if events else to_block
        initial = (0, int(self._at("nodeShareBps", block=first)), int(self._at("adapterShareBps", block=first)))
        return SharesSchedule((initial, *((int(e.args["effectiveAt"]), int(e.args["nodeShareBps"]),
                                           int(e.args["adapterShareBps"])) for e in events)))

    def _at(self, name: str, *args: Any, block: int | str) -> Any:
        try:
            return self.c.rewards.fn(name, *args).call(block_identifier=cast(Any, block))
        except Exception as e:  # web3 raises several kinds for an RPC or a state it cannot serve
            raise RewardsError(f"cannot read RewardDistributor.{name} at block {block}: {e}") from e

    def batches(self, from_block: int, to_block: int) -> list[EpochBatch]:
        """Every batch posted in the block range, verified from DA, with its `postedAt`; a batch that
        `BatchDisputes` marked unavailable by `to_block` gets the verdict `unavailable` (it earns nothing)."""
        verifier = Verifier(self.c.ledger, self.da, from_block=from_block)
        out = []
        try:
            unavailable = self.unavailable_batches(to_block)
            for ev in batch_events(self.c.ledger, from_block, to_block):
                posted = replace(ev, posted_at=self.c.ledger.batch(ev.batch_id).posted_at)
                if ev.batch_id in unavailable:
                    # the chain's verdict overrides DA's: the node did not publish a challenged chunk in time
                    out.append(EpochBatch(posted, UNAVAILABLE, None))
                    continue
                check = verifier.check_event(ev, keep_decoded=True)
                out.append(EpochBatch(posted, check.verdict.value, check.decoded if check.ok else None))
        except (VerifyError, ChainError) as e:
            raise RewardsError(f"cannot read the epoch's batches: {e}") from e
        return out

    def unavailable_batches(self, to_block: int) -> set[int]:
        """Ids of the batches `BatchDisputes.isUnavailable` says true for at `to_block`: those with a
        `BatchMarkedUnavailable` event at or before it (the mark is set once and never cleared, so the events and
        the view agree). Empty for a deployment without a disputes contract."""
        if self.c.disputes is None:
            return set()
        return {int(e.args["batchId"]) for e in self.c.disputes.events("BatchMarkedUnavailable", to_block=to_block)}

    def compute(self, plan: EpochPlan, *, credits_block: int | str = "latest") -> ComputedEpoch:
        """Apply the rule to the plan's batches with each node's credit at the epoch's end block
        (`creditAt(node, to_block)`, read at `credits_block`)."""
        batches = self.batches(plan.from_block, plan.to_block)
        # Registry and shares as far as any record's time can reach: a record is never later than its batch.
        registry = self.history(plan.to_block)
        shares = self.shares(plan.to_block)
        nodes = sorted({checksum(b.posted.node) for b in batches})
        credits = {n: int(self._at("creditAt", n, plan.to_block, block=credits_block)) for n in nodes}
        treasury = str(self._at("treasury", block=credits_block))
        result = compute_rewards(batches, registry, credits, shares, treasury, plan.previous_cumulative)
        token = str(self._at("token", block=credits_block))
        tree = RewardTree.build(self.chain_id, self.c.rewards.address, token, result.cumulative) \
            if result.cumulative else None
        prev = plan.previous
        payload = build_payload(result, tree, epoch=plan.epoch, from_block=plan.from_block, to_block=plan.to_block,
                                shares=shares, ledger=self.c.ledger.address,
                                previous_epoch=prev.epoch if prev else 0,
                                previous_root=prev.root if prev else bytes(32)) if tree is not None else {}
        return ComputedEpoch(plan, result, tree, payload, encode_payload(payload) if payload else b"")

    # -- publishing ---------------------------------------------------------------------------------------------

    def publish(self, epoch: ComputedEpoch, *, account: Any = None) -> ProposalInfo:
        """Put the payload on DA and propose the root with the debits (the poster's key signs)."""
        if epoch.tree is None:
            raise RewardsError(f"epoch {epoch.plan.epoch} has no rewards at all (no fees were owed): nothing to "
                               "propose; wait for counted batches")
        stored = self.c.rewards.proposal(epoch.plan.epoch)
        if stored.vetoed and stored.released_pages < stored.pages:
            # a vetoed epoch is proposed again only once its pages went back to the nodes (anyone may release)
            self.c.rewards.release_all(epoch.plan.epoch, account=account)
        commitment = self.da.put(epoch.payload_bytes)
        nodes, debits = epoch.proposal_args
        self.c.rewards.propose_paged(epoch.plan.epoch, epoch.plan.to_block, epoch.tree.root, epoch.result.total,
                                     commitment, nodes, debits, account=account)
        p = self.proposal_of(epoch.plan.epoch)
        log.info("proposed epoch %d root 0x%s total %d in tx %s", p.epoch, p.root.hex(), p.total, p.tx_hash)
        return p

    # -- verifying ----------------------------------------------------------------------------------------------

    def verify(self, epoch: int) -> EpochCheck:
        """Recompute `epoch` from the chain and DA and compare with its proposal and published payload."""
        p = self.proposal_of(epoch)
        diffs: list[str] = []
        stored = self.c.rewards.proposal(epoch)
        if stored.root == p.root and stored.payload_commitment_hash != keccak256(p.commitment):
            diffs.append("the stored payload commitment hash is not keccak256 of the event's commitment")
        try:
            published = self.payload_of(p)
        except RewardsError as e:
            return EpochCheck(epoch, p, [str(e)], None)
        prev = self.previous_of(epoch, before_block=p.block_number)
        prev_payload = self.payload_of(prev) if prev is not None else None
        start = prev.end_block + 1 if prev is not None else int(self.c.ledger.deploy_block or 0)
        to_block = int(published.get("toBlock", -1))
        if to_block != p.end_block:
            diffs.append(f"payload toBlock {to_block} != the proposal's endBlock {p.end_block}")
        if int(published.get("fromBlock", -1)) != start:
            diffs.append(f"fromBlock {published.get('fromBlock')} != {start} (the block after the previous epoch)")
        if not start <= to_block < p.block_number:
            diffs.append(f"toBlock {to_block} is not in [{start}, {p.block_number - 1}] (before the proposal)")
            return EpochCheck(epoch, p, diffs, None)
        cumulative = {a["account"]: int(a["cumulative"]) for a in prev_payload["accounts"]} if prev_payload else {}
        plan = EpochPlan(epoch, start, to_block, prev, cumulative)
        mine = self.compute(plan, credits_block=p.block_number - 1)
        if mine.tree is None:
            return EpochCheck(epoch, p, diffs + ["the recomputation has no rewards at all"], None)
        if mine.tree.root != p.root:
            diffs.append(f"root 0x{p.root.hex()} != recomputed 0x{mine.tree.root.hex()}")
        if mine.result.total != p.total:
            diffs.append(f"total {p.total} != recomputed {mine.result.total}")
        nodes, debits = mine.proposal_args
        if dict(zip(nodes, debits, strict=True)) != _sum_by_node(p.nodes, p.debits):
            diffs.append(f"debits {_sum_by_node(p.nodes, p.debits)} != recomputed "
                         f"{dict(zip(nodes, debits, strict=True))}")
        if mine.payload != published:
            keys = sorted(k for k in set(mine.payload) | set(published) if mine.payload.get(k) != published.get(k))
            diffs.append(f"published payload differs from the recomputation in: {', '.join(keys)}")
            mine_acc = {a["account"]: a["cumulative"] for a in mine.payload.get("accounts", [])}
            for a in published.get("accounts", []):
                if mine_acc.get(a.get("account")) != a.get("cumulative"):
                    diffs.append(f"account {a.get('account')}: published {a.get('cumulative')} != recomputed "
                                 f"{mine_acc.get(a.get('account'))}")
        return EpochCheck(epoch, p, diffs, mine.tree.root)

    # -- claiming and status ----------------------------------------------------------------------------------

    def claimable(self, account: str) -> tuple[ProposalInfo | None, RewardTree | None, int, int]:
        """(current proposal, its tree, cumulative amount in it, already claimed) for `account`."""
        current = self.c.rewards.current_epoch()
        claimed = self.c.rewards.claimed(checksum(account))
        if not current:
            return None, None, 0, claimed
        p = self.proposal_of(current)
        tree = tree_from_payload(self.payload_of(p))
        if tree.root != p.root or tree.root != self.c.rewards.current_root():
            raise RewardsError(f"the payload of epoch {current} does not rebuild the claimable root; do not claim "
                               "from it")
        return p, tree, tree.amount(account), claimed

    def claim(self, account: str, *, sender: Any = None) -> int:
        """Claim `account`'s unclaimed reward against the current root; returns the amount paid."""
        account = checksum(account)
        p, tree, amount, claimed = self.claimable(account)
        if p is None or tree is None:
            raise RewardsError("no root is claimable yet: wait until the first epoch's challenge window ends")
        if amount <= claimed:
            raise RewardsError(f"{account} has nothing to claim: cumulative {amount}, claimed {claimed}")
        self.c.rewards.claim(account, amount, tree.root, tree.proof(account), account=sender)
        return amount - claimed

    def status(self, account: str | None = None) -> dict[str, Any]:
        """Epochs with their state, and for `account` its claimable and claimed amounts."""
        head_ts = self.c.rewards.client.block_timestamp("latest")
        current = self.c.rewards.current_epoch()
        epochs = []
        for p in self.proposals():
            state = ("vetoed" if p.vetoed else "claimable" if p.epoch == current
                     else "in challenge window" if head_ts < p.claimable_at else "superseded")
            epochs.append({**p.to_json(), "state": state})
        out: dict[str, Any] = {"currentEpoch": current, "latestEpoch": self.c.rewards.latest_epoch(),
                               "totalDebited": str(self.c.rewards.total_debited()),
                               "totalClaimed": str(self.c.rewards.total_claimed()), "epochs": epochs}
        if account is not None:
            _, _, amount, claimed = self.claimable(account)
            out["account"] = {"account": checksum(account), "cumulative": str(amount), "claimed": str(claimed),
                              "claimable": str(max(0, amount - claimed))}
        return out


def _sum_by_node(nodes: tuple[str, ...], debits: tuple[int, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, d in zip(nodes, debits, strict=True):
        out[n] = out.get(n, 0) + d
    return out
