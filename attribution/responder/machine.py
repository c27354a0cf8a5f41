"""The dispute responder: the node answers every challenge against it, on its own, well inside the windows.

It follows `BatchDisputes.ChallengeOpened` events for its node (paged `eth_getLogs`) and acts on the contract's
state, never on an event alone:

- **Reorg-safe following.** The cursor (persisted in a small JSON file) only moves to `head - confirmations`; the
  blocks above it are read again every round, so an event that a reorg moves or drops is seen again or never acted
  on. Each challenge stays tracked until its status, read `confirmations` blocks deep, is answered or upheld: if a
  reorg drops the answer, the challenge reads open again and is answered again.
- **Answers** are built by `AnswerSource` (the node's store or archive, else DA) and checked against the chain
  first: an omission challenge of a posted seq gets `respondOmission(id, proof)`; an availability challenge gets
  `resolveAvailability(id, commitment, chunk, proof)`.
- **Sending** goes through the tx manager (`attribution.chain.txmgr`), as the batcher's posts do (the node runs both
  on one `TxManager`, so one nonce owner): sign, broadcast, find the receipt in later rounds, rebroadcast the same
  bytes after an RPC outage, bump the fees after `resubmit_after_s`, sign again if another transaction took the
  nonce. A failed or reverted answer is retried every round until the deadline.
- **Alarms.** A challenge the node cannot answer with what it holds (`Unanswerable`), or still unanswered
  `alarm_margin_s` (chain time) before its deadline, logs a `CRITICAL` line once and holds
  `loraledger_disputes_alarm` at 1; `loraledger_disputes_unanswerable_total` counts the first kind.

`Responder(...).start()` runs the rounds on a thread every `poll_interval_s`; `run_once()` is one round.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from attribution.chain.disputes import BatchDisputes, Dispute, DisputeKind, DisputeStatus
from attribution.chain.errors import ChainError, ContractRevert, RpcUnavailable
from attribution.chain.txmgr import FeeCapExceeded, NonceTooLow, PreparedTx, TxManager
from attribution.da.errors import DAError
from attribution.errors import AttributionError
from attribution.hashing import to_checksum_address
from attribution.responder.answers import AnswerSource, ResponderError, Unanswerable
from attribution.responder.metrics import ResponderMetrics

__all__ = ["Responder", "ResponderConfig"]

logger = logging.getLogger(__name__)

#: Reverts that say the challenge is no longer ours to answer (answered by someone else, or settled).
_GONE = {"DisputesNotOpen"}
#: An answer whose estimate reverts this many times in a row is given up (alarm): the same bytes revert again.
_MAX_REVERTS = 3


@dataclass(frozen=True)
class ResponderConfig:
    """How often to look, how deep before trusting a block, when to raise the alarm."""

    poll_interval_s: float = 2.0
    confirmations: int = 2
    alarm_margin_s: int = 12 * 3600  # chain seconds before a deadline: an unanswered challenge alarms
    resubmit_after_s: float = 20.0
    backoff_max_s: float = 10.0  # after an RPC outage the node is back to answering within this
    start_block: int = 0

    def __post_init__(self) -> None:
        if self.poll_interval_s <= 0 or self.confirmations < 0 or self.alarm_margin_s < 0:
            raise ResponderError("poll_interval_s must be > 0, confirmations and alarm_margin_s >= 0")


@dataclass
class _Tracked:
    """A challenge against this node, from its event until its status is settled `confirmations` deep."""

    dispute_id: int
    kind: str
    seen_at: float
    txs: list[PreparedTx] = field(default_factory=list)
    last_send: float = 0.0
    answered: bool = False
    alarmed: bool = False
    unanswerable: bool = False
    reverts: int = 0


class Responder:
    """Answers the challenges against one node; see the module doc."""

    def __init__(self, disputes: BatchDisputes, txmgr: TxManager, answers: AnswerSource,
                 config: ResponderConfig | None = None, metrics: ResponderMetrics | None = None,
                 state_path: Path | None = None) -> None:
        self.disputes = disputes
        self.txmgr = txmgr
        self.answers = answers
        self.config = config or ResponderConfig()
        self.metrics = metrics or ResponderMetrics()
        self.state_path = state_path
        self.node = to_checksum_address(txmgr.account.address)
        self._tracked: dict[int, _Tracked] = {}
        self._cursor = self._load_cursor()  # also restores the challenges tracked at the last save
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self.last_error: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Run a round every `poll_interval_s` on a daemon thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dispute-responder", daemon=True)
        self._thread.start()
        logger.info("dispute responder started for node %s on %s (from block %d)", self.node, self.disputes.address,
                    self._cursor + 1)

    def stop(self) -> None:
        """Stop the rounds (a round under way finishes first)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=60)

    def _loop(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                self.run_once()
                self._failures, delay = 0, self.config.poll_interval_s
            except (AttributionError, OSError, ValueError) as e:
                self._failures += 1
                self.last_error = f"{type(e).__name__}: {e}"
                delay = min(self.config.backoff_max_s, self.config.poll_interval_s * 2 ** self._failures)
                delay *= random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not crypto
                logger.warning("dispute responder round failed (%s); retrying in %.1fs", self.last_error, delay)

    # -- one round ----------------------------------------------------------------------------------------------

    def run_once(self) -> None:
        """Read new challenges, answer the open ones, settle what is final, update the metrics."""
        client = self.txmgr.client
        head = client.block_number()
        self._follow(head)
        now = client.block_timestamp(head)
        confirmed = head - self.config.confirmations
        open_count, alarm = 0, False
        for t in list(self._tracked.values()):
            d = self.disputes.dispute(t.dispute_id)
            if d.status is DisputeStatus.NONE or d.node.lower() != self.node.lower():
                self._tracked.pop(t.dispute_id)  # its event was reorged away (a new event brings it back)
                continue
            t.kind = "availability" if d.kind is DisputeKind.AVAILABILITY else "omission"
            if d.status is DisputeStatus.OPEN:
                open_count += 1
                self._work(t, d, now)
                if t.unanswerable or (not t.answered and d.deadline - now < self.config.alarm_margin_s):
                    alarm = True
                    self._alarm(t, d, now)
                continue
            if t.txs:
                # its receipt gives the metrics; one never broadcast (RPC outage) is still sent: the nonce it holds
                # must be filled or every later transaction of the key (the batcher's too) would wait behind it
                try:
                    self._check(t)
                except RpcUnavailable:
                    raise
                except ChainError as e:
                    logger.warning("challenge %d: checking its answer failed (%s); again next round", t.dispute_id, e)
                continue
            if self._settled(t.dispute_id, confirmed):
                self._tracked.pop(t.dispute_id)
                self._save_state()
                if d.status is DisputeStatus.UPHELD:
                    logger.critical("ALARM: dispute %d (%s, batch %d, index %d) was upheld against this node",
                                    t.dispute_id, t.kind, d.batch_id, d.index)
        self.metrics.open.set(open_count)
        self.metrics.alarm.set(1 if alarm else 0)
        self.metrics.last_block.set(self._cursor)

    def _follow(self, head: int) -> None:
        if head <= self._cursor:
            return
        changed = False
        for ev in self.disputes.events("ChallengeOpened", from_block=self._cursor + 1, to_block=head,
                                       node=self.node):
            dispute_id = int(ev.args["disputeId"])
            if dispute_id in self._tracked:
                continue
            kind = "availability" if int(ev.args["kind"]) == DisputeKind.AVAILABILITY else "omission"
            self._tracked[dispute_id] = _Tracked(dispute_id, kind, time.monotonic())
            self.metrics.seen.labels(kind=kind).inc()
            changed = True
            logger.info("challenge %d (%s) against this node: batch %d, index %d, deadline %d", dispute_id, kind,
                        int(ev.args["batchId"]), int(ev.args["index"]), int(ev.args["deadline"]))
        confirmed = head - self.config.confirmations
        if confirmed > self._cursor:
            self._cursor = confirmed
            changed = True
        if changed:
            self._save_state()

    def _settled(self, dispute_id: int, block: int) -> bool:
        if block < 0:
            return False
        status = self.disputes.client.call(self.disputes.fn("dispute", dispute_id), block=block)[1]
        return DisputeStatus(status) in (DisputeStatus.ANSWERED, DisputeStatus.UPHELD)

    # -- answering ----------------------------------------------------------------------------------------------

    def _work(self, t: _Tracked, d: Dispute, now: int) -> None:
        """Check or send this challenge's answer; a failure is counted and logged, and the other challenges go on
        (only an RPC outage ends the round)."""
        if t.unanswerable or now > d.deadline:
            return
        if t.answered and not t.txs:  # our answer landed, yet the challenge reads open: a reorg dropped it
            logger.warning("challenge %d reads open again after its answer landed (reorg); answering again",
                           t.dispute_id)
            t.answered = False
            self.txmgr.reset_nonce()  # the reorg took our nonces back with the answer
        try:
            if t.txs:
                self._check(t)
            if not t.txs and not t.answered:
                self._send(t, d)
            return
        except Unanswerable as e:
            self._give_up(t, str(e))
            return
        except ContractRevert as e:
            name = type(e).__name__
            if name in _GONE:
                logger.info("challenge %d is no longer open (%s)", t.dispute_id, name)
                return
            t.reverts += 1
            if t.reverts >= _MAX_REVERTS:  # the same answer keeps reverting: no retry will change that
                self._give_up(t, f"its answer reverts with {e}")
            reason = name
        except RpcUnavailable:
            self.metrics.failed.labels(kind=t.kind, reason="RpcUnavailable").inc()
            raise
        except (ChainError, DAError) as e:
            reason = type(e).__name__
            self.last_error = f"{reason}: {e}"
        self.metrics.failed.labels(kind=t.kind, reason=reason).inc()
        logger.warning("answer to challenge %d (%s) failed (%s); retrying next round", t.dispute_id, t.kind, reason)

    def _give_up(self, t: _Tracked, why: str) -> None:
        t.unanswerable = True
        self.last_error = why
        self.metrics.unanswerable.labels(kind=t.kind).inc()
        logger.critical("ALARM: challenge %d (%s) against node %s cannot be answered: %s", t.dispute_id, t.kind,
                        self.node, why)

    def _calldata(self, d: Dispute) -> bytes:
        if d.kind is DisputeKind.OMISSION:
            proof = self.answers.omission_proof(d.batch_id, d.index, d.leaf)
            data = self.disputes.contract.encode_abi("respondOmission", args=[d.dispute_id, proof])
        else:
            a = self.answers.chunk_answer(d.batch_id, d.index)
            data = self.disputes.contract.encode_abi("resolveAvailability",
                                                     args=[d.dispute_id, a.commitment, a.chunk, a.proof])
        return bytes.fromhex(data[2:])

    def _send(self, t: _Tracked, d: Dispute) -> None:
        tx = self.txmgr.prepare(self.disputes.address, self._calldata(d))  # the estimate reverts a bad answer
        t.txs, t.last_send = [tx], time.monotonic()
        self._broadcast(t, tx)

    def _broadcast(self, t: _Tracked, tx: PreparedTx) -> None:
        try:
            self.txmgr.broadcast(tx)
        except NonceTooLow:
            self.txmgr.reset_nonce()  # one of ours landed (the receipt shows next round) or the key sent another
        logger.info("answer to challenge %d sent: tx 0x%s nonce %d", t.dispute_id, tx.tx_hash.hex(), tx.nonce)

    def _receipt(self, t: _Tracked) -> bool:
        """Look for the receipt of our answer; True (and `t.txs` emptied) once one of its transactions was mined."""
        receipt = self.txmgr.first_receipt([x.tx_hash for x in t.txs])
        if receipt is None:
            return False
        if int(receipt["status"]) == 1:
            t.answered = True
            seconds = time.monotonic() - t.seen_at
            self.metrics.answered.labels(kind=t.kind).inc()
            self.metrics.answer_seconds.observe(seconds)
            logger.info("challenge %d (%s) answered in %.1fs (tx %s)", t.dispute_id, t.kind, seconds,
                        receipt["transactionHash"].to_0x_hex())
        else:
            revert = self.txmgr.revert_of(receipt, t.txs[-1])
            name = type(revert).__name__ if revert is not None else "reverted"
            if name not in _GONE:
                self.metrics.failed.labels(kind=t.kind, reason=name).inc()
            logger.warning("answer to challenge %d reverted (%s)", t.dispute_id, revert)
        t.txs = []
        return True

    def _check(self, t: _Tracked) -> None:
        if self._receipt(t):
            return
        last = t.txs[-1]
        if not self.txmgr.is_known(last.tx_hash):
            if self.txmgr.chain_nonce("latest") > last.nonce:  # the nonce went to another transaction of the key
                self.txmgr.reset_nonce()
                t.txs = []
                return
            self._broadcast(t, last)  # never reached the node (RPC outage): the same bytes again
            return
        if time.monotonic() - t.last_send >= self.config.resubmit_after_s:
            try:
                bumped = self.txmgr.bump(last)
            except FeeCapExceeded as e:
                logger.warning("challenge %d: %s", t.dispute_id, e)
                return
            t.txs.append(bumped)
            t.last_send = time.monotonic()
            self._broadcast(t, bumped)

    def _alarm(self, t: _Tracked, d: Dispute, now: int) -> None:
        if t.alarmed:
            return
        t.alarmed = True
        why = ("it cannot be answered" if t.unanswerable
               else f"still unanswered {d.deadline - now} s before its deadline")
        logger.critical("ALARM: challenge %d (%s, batch %d, index %d) against node %s: %s (deadline %d); the node "
                        "is slashed if nobody answers it by then (last error: %s)", t.dispute_id, t.kind,
                        d.batch_id, d.index, self.node, why, d.deadline, self.last_error)

    # -- state --------------------------------------------------------------------------------------------------

    def _load_cursor(self) -> int:
        """The persisted cursor (and the challenges still tracked when it was written), else `start_block - 1`."""
        start = self.config.start_block - 1
        if self.state_path is None or not self.state_path.exists():
            return start
        try:
            state = json.loads(self.state_path.read_text())
            if str(state.get("disputes", "")).lower() != self.disputes.address.lower():
                return start  # another deployment's state
            for dispute_id in state.get("tracked", []):
                # kind is read from the contract in the first round
                self._tracked[int(dispute_id)] = _Tracked(int(dispute_id), "omission", time.monotonic())
            return max(start, int(state["cursor"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("responder state %s unreadable (%s); reading challenges from block %d", self.state_path,
                           e, start + 1)
            return start

    def _save_state(self) -> None:
        """Persist the cursor with the challenges not yet settled, so a restart misses none of them."""
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        tmp.write_text(json.dumps({"disputes": self.disputes.address, "cursor": self._cursor,
                                   "tracked": sorted(self._tracked)}))
        os.replace(tmp, self.state_path)
