"""The challenger: follow every node's batches, verify each from DA, and open the dispute each lie calls for.

One round (`run_once`), on the chain's clock (the latest block's timestamp, which the contract's windows use):

1. **Follow** `BatchPosted` events `confirmations` deep, page by page, reorg-safe as the indexer is (the hash of
   every followed block with a batch and of every page end is stored; a changed top block rolls back to the
   common ancestor).
2. **Verify** every new batch from DA with the `verify` code (payload fetch, header, record ranges, node, chain,
   ledger, root rebuild). A payload DA does not have (404, or bytes that are not the committed payload) is
   challenged for availability once `grace_s` has passed since the post, inside the challenge window. A payload
   whose header names another node, chain, ledger or seq range but whose records rebuild the posted root holds
   misplaced records: proven at once (`proveMisplacedRecord`). DA unreachable is no evidence: retried next round.
3. **Receipts** (from `--receipts`, `POST /receipts` or the SDK): two receipts of one node for one seq with
   different leaves are proven at once (`proveEquivocation`); a receipt whose seq is in a batch that verifies but
   holds another leaf there is proven at once (`proveReceiptConflict`); one whose batch cannot be opened (root
   mismatch, malformed) gets an omission challenge the node must answer with a proof; an unposted one past
   `record.timestamp + MAX_POSTING_DELAY` (or dated beyond `FUTURE_TOLERANCE`) gets an omission that slashes at
   once. A receipt whose leaf is where it belongs is done.
4. **Settle** the watcher's open challenges past their deadline (`settleExpired`), note answered ones, and
   withdraw the bonds and refunds owed to it.

Every fault is keyed as the contract keys it and written to the state before its transaction is sent, so the
watcher never challenges one fault twice (see `attribution.watch.state`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from web3.exceptions import BlockNotFound
from web3.types import BlockIdentifier

from attribution.chain.batch import PostedBatch
from attribution.chain.commitments import NOT_IN_CALLDATA
from attribution.chain.contracts import Ledger
from attribution.chain.disputes import BatchDisputes, DisputeStatus, DisputeTx
from attribution.chain.errors import ChainError, ContractRevert
from attribution.da.client import DAClient
from attribution.errors import AttributionError
from attribution.hashing import keccak256, to_checksum_address
from attribution.records.tree import record_tree
from attribution.verify import BatchCheck, Verdict, Verifier, VerifyError, batch_events, columns_of
from attribution.watch.metrics import WatchMetrics
from attribution.watch.receipts import HeldReceipt, ReceiptRejected, parse_evidence
from attribution.watch.state import BatchRow, WatchState

__all__ = ["RoundStats", "WatchConfig", "Watcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchConfig:
    """How the watcher follows and when it acts."""

    confirmations: int = 2  # follow only blocks this deep (reorg safety)
    page_blocks: int = 2_000  # blocks per eth_getLogs page
    grace_s: int = 600  # chain seconds after a post before a payload DA lacks is challenged
    availability_chunk: int = 0  # the chunk an availability challenge names (any chunk of a withheld payload)
    receipts_path: Path | None = None  # a receipt file or a directory of them, read every round
    withdraw: bool = True  # withdraw owed bonds and refunds every round
    cache_batches: int = 16  # checked payloads kept in memory for receipts that arrive later


@dataclass
class RoundStats:
    """What one round did."""

    head: int = 0
    chain_time: int = 0
    cursor: int = 0
    rolled_back_to: int | None = None
    batches_checked: int = 0
    actions: list[str] = field(default_factory=list)


def _located(e: PostedBatch) -> tuple[int, bytes]:
    """(block number, block hash) of a batch read from its event (always set there)."""
    assert e.block_number is not None and e.block_hash is not None, "a BatchPosted event has its block"
    return e.block_number, e.block_hash


class _Reorged(Exception):
    """A block changed while a page was read; the next round rolls back."""


class Watcher:
    """The challenger of one deployment (see the module doc). `disputes` sends from the watcher's key (through
    a `TxManager`: `disputes.use_txmgr(...)`)."""

    def __init__(self, ledger: Ledger, disputes: BatchDisputes, da: DAClient, state: WatchState, *,
                 deploy_block: int, config: WatchConfig | None = None, metrics: WatchMetrics | None = None) -> None:
        self.ledger = ledger
        self.disputes = disputes
        self.da = da
        self.state = state
        self.deploy_block = deploy_block
        self.config = config or WatchConfig()
        self.metrics = metrics or WatchMetrics()
        self.verifier = Verifier(ledger, da, from_block=deploy_block, page_blocks=self.config.page_blocks)
        self.chain_id = ledger.client.chain_id
        account = disputes.txmgr.account if disputes.txmgr is not None else disputes.client.account
        if account is None:
            raise AttributionError("the watcher signs its challenges: load a key (keystore or private key)")
        self.address = to_checksum_address(account.address)
        self.windows = disputes.windows()
        self._checked: OrderedDict[int, BatchCheck] = OrderedDict()

    # -- intake ---------------------------------------------------------------------------------------------

    def add_evidence(self, evidence: dict[str, Any] | str | bytes | Path, source: str) -> dict[str, Any]:
        """Hold a client's receipt (a saved answer or `{record, receipt}`); `ReceiptRejected` says why not."""
        try:
            held = parse_evidence(evidence, self.chain_id, self.ledger.address)
        except ReceiptRejected as e:
            self.metrics.receipts.labels(result=e.problem).inc()
            raise
        new, others = self.state.add_receipt(held, source)
        self.metrics.receipts.labels(result="held" if new else "duplicate").inc()
        if new:
            log.info("holding receipt of %s seq %d (leaf 0x%s) from %s", held.node, held.seq, held.leaf.hex(), source)
        return {"status": "held" if new else "duplicate", "node": held.node, "seq": held.seq,
                "leaf": "0x" + held.leaf.hex(), "equivocation": bool(others)}

    def scan_receipts(self) -> int:
        """Read new receipt files under `config.receipts_path`; returns how many receipts were new."""
        path = self.config.receipts_path
        if path is None or not path.exists():
            return 0
        files = [path] if path.is_file() else sorted(p for p in path.glob("*.json") if p.is_file())
        added = 0
        for f in files:
            mtime = f.stat().st_mtime_ns
            if self.state.file_seen(f, mtime):
                continue
            try:
                out = self.add_evidence(f, f"file:{f}")
                added += out["status"] == "held"
                result = out["status"]
            except ReceiptRejected as e:
                log.warning("receipt file %s refused: %s", f, e)
                result = f"refused: {e.problem}"
            self.state.mark_file(f, mtime, result)
        return added

    # -- one round ------------------------------------------------------------------------------------------

    def run_once(self) -> RoundStats:
        """One round (see the module doc). Chain and DA failures propagate as `ChainError`/`VerifyError` after
        whatever was done is saved; the caller retries."""
        stats = RoundStats()
        latest = self._block("latest")
        stats.head, stats.chain_time = int(latest["number"]), int(latest["timestamp"])
        now = stats.chain_time
        stats.rolled_back_to = self._check_reorg()
        try:
            self._follow(stats.head - self.config.confirmations)
        except _Reorged as e:
            log.warning("reorg while following: %s; rolling back next round", e)
        stats.cursor = self.state.cursor()
        self.metrics.cursor.set(stats.cursor)
        self.scan_receipts()
        self._resume_sending()
        stats.batches_checked = self._check_batches(now, stats)
        self._prove_equivocations(stats)
        self._judge_receipts(now, stats)
        self._settle(now, stats)
        if self.config.withdraw:
            self._withdraw(stats)
        self.metrics.observe_state(self.state)
        self.metrics.last_round.set(time.time())
        return stats

    # -- following ------------------------------------------------------------------------------------------

    def _block(self, number: BlockIdentifier) -> Any:
        """The block, None when the chain has none at that height; an unreachable RPC raises `ChainError` (a
        missing answer must not look like a reorg and roll everything back)."""
        try:
            return self.ledger.client.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        except Exception as e:  # noqa: BLE001 - transport and RPC errors of any kind: no evidence, retry later
            raise ChainError(f"reading block {number!r} from {self.ledger.client.safe_url}: "
                             f"{type(e).__name__}") from None

    def _check_reorg(self) -> int | None:
        top = self.state.top_block()
        if top is None:
            return None
        blk = self._block(top[0])
        if blk is not None and bytes(blk["hash"]) == top[1]:
            return None
        ancestor, offset = self.deploy_block - 1, 0
        while True:
            rows = self.state.blocks_below(offset)
            if not rows:
                break
            match = next((n for n, h in rows if (b := self._block(n)) is not None and bytes(b["hash"]) == h), None)
            if match is not None:
                ancestor = match
                break
            offset += len(rows)
        gone = self.state.rollback(ancestor)
        self.metrics.reorgs.inc()
        log.warning("reorg: block %d changed; rolled back to %d (%d batches forgotten)", top[0], ancestor, gone)
        return ancestor

    def _follow(self, target: int) -> None:
        cursor = self.state.cursor()
        while cursor < target:
            end = min(target, cursor + self.config.page_blocks)
            events = list(batch_events(self.ledger, cursor + 1, end))
            headers = {}
            for n in sorted({_located(e)[0] for e in events} | {end}):
                blk = self._block(n)
                if blk is None:
                    raise _Reorged(f"block {n} vanished")
                headers[n] = blk
            rows = []
            for e in events:
                number, block_hash = _located(e)
                if block_hash != bytes(headers[number]["hash"]):
                    raise _Reorged(f"block {number} changed between eth_getLogs and eth_getBlockByNumber")
                rows.append({"batch_id": e.batch_id, "node": e.node, "first_seq": e.first_seq, "count": e.count,
                             # b"": not in the posting transaction's calldata (postBatch called by a contract)
                             "root": e.root, "commitment": e.da_commitment or b"", "first_ts": e.first_timestamp,
                             "last_ts": e.last_timestamp, "posted_at": int(headers[number]["timestamp"]),
                             "block_number": number, "block_hash": block_hash, "tx_hash": e.tx_hash,
                             "log_index": e.log_index})
            self.state.save_page(end, {n: bytes(h["hash"]) for n, h in headers.items()}, rows)
            if rows:
                log.info("blocks %d..%d: %d batches", cursor + 1, end, len(rows))
            cursor = end

    # -- batches --------------------------------------------------------------------------------------------

    @staticmethod
    def _event(b: BatchRow) -> PostedBatch:
        return PostedBatch(b.batch_id, b.node, b.root, b.first_seq, b.count, keccak256(b.commitment), b.first_ts,
                           b.last_ts, b.posted_at, b.commitment or None, b.block_number, b.block_hash, b.tx_hash,
                           b.log_index, missing_commitment="" if b.commitment else NOT_IN_CALLDATA)

    def _check(self, b: BatchRow) -> BatchCheck:
        check = self.verifier.check_event(self._event(b), keep_decoded=True)
        if check.decoded is not None:
            self._checked[b.batch_id] = check
            while len(self._checked) > self.config.cache_batches:
                self._checked.popitem(last=False)
        return check

    def _check_batches(self, now: int, stats: RoundStats) -> int:
        done = 0
        for b in self.state.batches_to_check():
            if b.verdict == Verdict.PAYLOAD_MISSING.value and (
                    self.state.challenge(f"availability:{b.batch_id}") is not None
                    or now >= b.posted_at + self.windows["CHALLENGE_WINDOW"]):
                continue  # the availability game has it (or can no longer): no need to ask DA every round
            try:
                check = self._check(b)
            except VerifyError as e:  # DA or RPC unreachable: no evidence either way
                log.warning("batch %d not checked: %s", b.batch_id, e)
                self.metrics.errors.labels(kind="da").inc()
                continue
            done += 1
            if b.verdict is None:
                self.metrics.batches.labels(verdict=check.verdict.value).inc()
            self.state.set_verdict(b.batch_id, check.verdict.value, check.detail,
                                   now if check.verdict is Verdict.PAYLOAD_MISSING else None)
            if check.verdict is Verdict.PAYLOAD_MISSING:
                self._maybe_availability(b, now, stats)
            elif check.verdict is Verdict.HEADER_MISMATCH and check.decoded is not None:
                self._maybe_misplaced(b, check, stats)
            if check.verdict is not Verdict.OK:
                log.warning("batch %d of %s: %s: %s", b.batch_id, b.node, check.verdict.value, check.detail)
        return done

    def _maybe_availability(self, b: BatchRow, now: int, stats: RoundStats) -> None:
        if now < b.posted_at + self.config.grace_s:
            return
        closes = b.posted_at + self.windows["CHALLENGE_WINDOW"]
        if now >= closes:
            log.warning("batch %d: payload missing but its challenge window closed at %d", b.batch_id, closes)
            return
        chunk = self.config.availability_chunk
        self._act(f"availability:{b.batch_id}", "availability", b.node, b.batch_id, chunk, stats,
                  partial(self.disputes.open_availability, b.batch_id, chunk))

    def _maybe_misplaced(self, b: BatchRow, check: BatchCheck, stats: RoundStats) -> None:
        d = check.decoded
        assert d is not None
        cols = columns_of(d)
        try:
            tree = record_tree(cols, leaves=cols.leaf_bytes())
        except AttributionError:
            return
        if tree.root_bytes != b.root:
            return  # the root is not the payload's: only receipts can show what it lacks
        foreign = (d.chain_id != self.chain_id or d.ledger != bytes.fromhex(self.ledger.address[2:].lower())
                   or d.node != bytes.fromhex(b.node[2:].lower()))
        index = next((i for i in range(d.count)
                      if foreign or not b.first_seq <= d.first_seq + i < b.first_seq + b.count), None)
        if index is None:
            return
        record, proof = cols[index], tree.get_proof_bytes(index)
        self._act(f"commission:{b.batch_id}", "commission", b.node, b.batch_id, record.seq, stats,
                  partial(self.disputes.prove_misplaced_record, b.batch_id, record.abi_values(), proof))

    # -- receipts -------------------------------------------------------------------------------------------

    def _prove_equivocations(self, stats: RoundStats) -> None:
        for node, seq in self.state.equivocations():
            held = self.state.receipts_for(node, seq)
            a, b = held[0], held[1]
            self._act(f"omission:{node}:{seq}", "equivocation", node, 0, seq, stats,
                      partial(self.disputes.prove_equivocation, node, seq, a.leaf, a.receipt, b.leaf, b.receipt))
            for h in held:
                self.state.set_receipt_state(h, "challenged", "equivocation")

    def _judge_receipts(self, now: int, stats: RoundStats) -> None:
        for held in self.state.receipts("held"):
            key = f"omission:{held.node}:{held.seq}"
            if self.state.challenge(key) is not None:
                self.state.set_receipt_state(held, "challenged", key)
                continue
            b = self.state.batch_covering(held.node, held.seq)
            if b is None:
                self._maybe_unposted(held, now, stats)
            elif b.verdict == Verdict.OK.value:
                self._check_leaf(held, b, stats)
            elif b.verdict in (Verdict.ROOT_MISMATCH.value, Verdict.MALFORMED.value, Verdict.HEADER_MISMATCH.value):
                if now >= b.posted_at + self.windows["CHALLENGE_WINDOW"]:
                    continue
                self._act(key, "omission", held.node, b.batch_id, held.seq, stats,
                          partial(self.disputes.open_omission, held.record.abi_values(), held.receipt, b.batch_id))
            # no verdict yet, or payload missing (the availability game decides): wait

    def _maybe_unposted(self, held: HeldReceipt, now: int, stats: RoundStats) -> None:
        ts = held.record.timestamp
        due = ts + self.windows["MAX_POSTING_DELAY"]
        if now < due and ts <= now + self.windows["FUTURE_TOLERANCE"]:
            return
        if self.ledger.next_seq(held.node) > held.seq:
            return  # posted, not followed yet (not deep enough): judged when its batch is
        self._act(f"omission:{held.node}:{held.seq}", "omission", held.node, 0, held.seq, stats,
                  partial(self.disputes.open_omission, held.record.abi_values(), held.receipt, 0))

    def _check_leaf(self, held: HeldReceipt, b: BatchRow, stats: RoundStats) -> None:
        check = self._checked.get(b.batch_id)
        if check is None:
            try:
                check = self._check(b)
            except VerifyError as e:
                log.warning("batch %d not readable for a receipt: %s", b.batch_id, e)
                return
        if check.decoded is None or check.tree is None:
            return
        cols = columns_of(check.decoded)
        index = held.seq - b.first_seq
        there = cols[index]
        if there.leaf() == held.leaf:
            self.state.set_receipt_state(held, "in_batch", f"batch {b.batch_id}")
            return
        proof = check.tree.get_proof_bytes(index)
        self._act(f"omission:{held.node}:{held.seq}", "receipt_conflict", held.node, b.batch_id, held.seq, stats,
                  partial(self.disputes.prove_receipt_conflict, b.batch_id, there.abi_values(), proof, held.leaf,
                          held.receipt))

    # -- sending and settling -------------------------------------------------------------------------------

    def _act(self, key: str, kind: str, node: str, batch_id: int, index: int, stats: RoundStats,
             send: Callable[[], DisputeTx]) -> None:
        if not self.state.claim(key, kind, node, batch_id, index):
            return
        log.info("%s: %s against %s (batch %d, index %d)", key, kind, node, batch_id, index)
        try:
            result = send()
        except ContractRevert as e:
            name = type(e).__name__
            status = "upheld" if name == "DisputesAlreadyPunished" else "failed"
            self.state.update_challenge(key, status, detail=f"{name}: {e}")
            self.metrics.challenges.labels(kind=kind, outcome=status).inc()
            log.warning("%s: %s reverted: %s", key, kind, e)
            return
        except ChainError as e:  # not known whether it landed: `_resume_sending` finds out when nothing is pending
            self.metrics.errors.labels(kind="chain").inc()
            log.warning("%s: %s not confirmed: %s", key, kind, e)
            return
        d = self.disputes.dispute(result.dispute_id)
        status = {DisputeStatus.OPEN: "open", DisputeStatus.UPHELD: "upheld"}.get(d.status, "answered")
        self.state.update_challenge(key, status, dispute_id=result.dispute_id, tx_hash=result.tx.tx_hash,
                                    slashed=result.slashed, deadline=d.deadline)
        self.metrics.challenges.labels(kind=kind, outcome=status).inc()
        if result.slashed:
            self.metrics.slashed.inc(result.slashed)
        stats.actions.append(f"{kind} {key}: dispute {result.dispute_id} {status}")
        log.info("%s: dispute %d %s (slashed %d)", key, result.dispute_id, status, result.slashed)

    def _resume_sending(self) -> None:
        """Challenges whose transaction was not confirmed: once nothing of ours is pending, find the dispute on
        chain or free the key so the next round sends again."""
        sending = self.state.challenges("sending")
        if not sending:
            return
        txmgr = self.disputes.txmgr
        if txmgr is not None and txmgr.chain_nonce("pending") != txmgr.chain_nonce("latest"):
            return
        for ch in sending:
            found = None
            for name in ("ChallengeOpened", "FaultProven"):
                for ev in self.disputes.events(name, from_block=self.deploy_block, node=ch.node):
                    a = ev.args
                    if str(a["challenger"]).lower() == self.address.lower() and int(a["batchId"]) == ch.batch_id \
                            and int(a["index"]) == ch.idx:
                        found = int(a["disputeId"])
            if found is None:
                with self.state.tx() as db:
                    db.execute("DELETE FROM challenges WHERE key = ? AND status = 'sending'", (ch.key,))
                continue
            d = self.disputes.dispute(found)
            status = {DisputeStatus.OPEN: "open", DisputeStatus.UPHELD: "upheld"}.get(d.status, "answered")
            self.state.update_challenge(ch.key, status, dispute_id=found, deadline=d.deadline)

    def _settle(self, now: int, stats: RoundStats) -> None:
        for ch in self.state.challenges("open"):
            assert ch.dispute_id is not None
            d = self.disputes.dispute(ch.dispute_id)
            if d.status is DisputeStatus.ANSWERED:
                self.state.update_challenge(ch.key, "answered", detail="the node answered: the bond is the node's")
                self.metrics.challenges.labels(kind=ch.kind, outcome="answered").inc()
                stats.actions.append(f"{ch.key}: dispute {ch.dispute_id} answered")
            elif d.status is DisputeStatus.UPHELD:
                self.state.update_challenge(ch.key, "upheld", detail="upheld by another settler")
            elif now > d.deadline:
                try:
                    result = self.disputes.settle_expired(ch.dispute_id)
                except ContractRevert as e:
                    log.warning("settling dispute %d: %s", ch.dispute_id, e)
                    continue
                except ChainError as e:
                    log.warning("settling dispute %d not confirmed: %s", ch.dispute_id, e)
                    continue
                self.state.update_challenge(ch.key, "upheld", slashed=result.slashed, tx_hash=result.tx.tx_hash)
                self.metrics.challenges.labels(kind=ch.kind, outcome="upheld").inc()
                if result.slashed:
                    self.metrics.slashed.inc(result.slashed)
                stats.actions.append(f"{ch.key}: dispute {ch.dispute_id} settled, slashed {result.slashed}")
                log.info("dispute %d expired unanswered: slashed %d", ch.dispute_id, result.slashed)

    def _withdraw(self, stats: RoundStats) -> None:
        owed = self.disputes.owed(self.address)
        if owed == 0:
            return
        try:
            self.disputes.withdraw()
        except ChainError as e:
            log.warning("withdrawing %d wei: %s", owed, e)
            return
        self.metrics.withdrawn.inc(owed)
        stats.actions.append(f"withdrew {owed} wei")

    # -- status ---------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the watcher knows and did (the `/v1/status` body)."""
        return {"address": self.address, "chainId": self.chain_id, "ledger": self.ledger.address,
                "disputes": self.disputes.address, "cursor": self.state.cursor(),
                "batches": self.state.verdict_counts(), "receipts": self.state.receipt_counts(),
                "challenges": [c.to_json() for c in self.state.challenges()]}
