"""The batcher: stored records → sealed batches → DA → `AttributionLedger.postBatch` → final, exactly once.

Every batch is a persisted state machine in the record store (`batches` table):

    sealed     seq range fixed; LLB2 payload and Merkle root computed and stored (one transaction)
    dispersed  the DA commitment stored
    submitted  a signed postBatch transaction stored (hash, nonce, fees, raw bytes) - before it is broadcast
    posted     its receipt seen (block, on-chain batch id, gas, L1 fee)
    final      `confirmations` blocks deep; the records may be pruned after the retention

Exactly-once rests on the ledger: `postBatch` requires `firstSeq == nextSeq(node)`, so a range can land only
once and only in order. On start and after any error the batcher *reconciles*: `nextSeq(node)` and the node's
`BatchPosted` events (paged `eth_getLogs`) say which local batches landed; a range is never sealed twice, so the
chain's batches are the local ones. A crash anywhere leaves a state from which the next pass continues: a sealed
batch is re-put (DA puts are idempotent), a submitted one is rebroadcast byte for byte or found on chain.

Outages (DA 503/down, RPC down) back off exponentially with jitter; records wait in the store, serving goes on.
While it backs off from a DA or RPC that did not answer, every poll probes that part, and once a part seen down
answers again the next pass runs at once (a long backoff planned mid-outage does not outlast the outage).
A payload the DA refuses for size is re-split. A posted batch whose receipt vanishes (reorg) goes back to
`dispersed` and is posted again.

Use: `Batcher(store, da, ledger, txmgr, config).start()` / `.stop()` (APScheduler jobs), or `run_once()`. Each job
schedules its next run when it ends, so a pass blocked on a slow part is never "skipped" by the scheduler.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from attribution.batcher.config import (
    DEFAULT_MAX_BATCH_RECORDS,
    BatcherConfig,
    BatcherError,
    BatcherInconsistent,
)
from attribution.batcher.metrics import BatcherMetrics
from attribution.batcher.status import pipeline_status
from attribution.chain.contracts import Ledger
from attribution.chain.errors import ChainError, ContractRevert, RpcUnavailable
from attribution.chain.txmgr import FeeCapExceeded, NonceTooLow, PreparedTx, TxManager
from attribution.da.client import DAClient
from attribution.da.codec import is_our_commitment, parse_commitment
from attribution.da.errors import DACommitmentInvalid, DAError, DAPayloadTooLarge, DARequestRejected, DAUnavailable
from attribution.errors import AttributionError
from attribution.hashing import to_checksum_address
from attribution.records.payload import (
    MAX_PAYLOAD_BYTES,
    decode_batch,
    encode_columns,
    max_records_for,
    profile_bytes,
)
from attribution.records.tree import record_tree
from attribution.store import Batch, RecordStore, StoreError

__all__ = ["Batcher", "BatcherConfig", "BatcherError", "BatcherInconsistent"]

logger = logging.getLogger(__name__)

#: How long a probe of a part that was down (DA /health, the RPC) may take before it counts as still down.
PROBE_TIMEOUT_S = 5.0

class Batcher:
    """Drives the store's batches through DA and the ledger; see the module doc."""

    def __init__(self, store: RecordStore, da: DAClient, ledger: Ledger, txmgr: TxManager,
                 config: BatcherConfig | None = None, metrics: BatcherMetrics | None = None,
                 on_transition: Callable[[str, Batch], None] | None = None) -> None:
        """`on_transition(event, batch)` is called after each persisted step (`sealed`, `dispersed`,
        `submitted`, `broadcast`, `posted`, `final`, `reorged`); the CLI's fault injection hooks in here."""
        self.store = store
        self.on_transition = on_transition
        self.da = da
        self.ledger = ledger
        self.txmgr = txmgr
        self.config = config or BatcherConfig()
        self.metrics = metrics or BatcherMetrics()
        self.node = to_checksum_address(txmgr.account.address)
        if bytes.fromhex(self.node[2:]) != store.node:
            raise BatcherInconsistent(f"the signing key is {self.node} but the store belongs to node "
                                      f"0x{store.node.hex()}; use that node's key")
        self.chain_id = txmgr.client.chain_id
        self.ledger_bytes = bytes.fromhex(ledger.address[2:])
        self._lock = threading.RLock()
        self._scheduler: BackgroundScheduler | None = None
        self._lock_fd: int | None = None
        self._need_reconcile = True
        self._failures = 0
        self._next_try = 0.0
        self._outage: str | None = None  # "da" or "rpc": the part whose silence made the last pass fail
        self._outage_seen_down = False  # a probe found it down since (so an answer now means it came back)
        self._last_seal = time.monotonic()
        self._last_error: str | None = None
        self.fatal: BatcherError | None = None
        self._chain_next: int | None = None
        self._cap = self._max_records()

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the APScheduler jobs: `pipeline` every poll interval, `seal` every seal interval.

        Takes `<store>.batcher.lock`: one batcher per store (the node's or a standalone one, never both)."""
        if self._scheduler is not None:
            return
        self._take_lock()
        sched = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        sched.start()
        self._scheduler = sched
        self._schedule("pipeline", 0.0)
        self._schedule("seal", self.config.seal_interval_s)
        logger.info("batcher started for node %s on ledger %s", self.node, self.ledger.address)

    def stop(self) -> None:
        """Stop the jobs (waits for a running pass to finish)."""
        sched, self._scheduler = self._scheduler, None  # a job ending now schedules nothing more
        if sched is not None:
            sched.shutdown(wait=True)
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _take_lock(self) -> None:
        path = str(self.store.path) + ".batcher.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise BatcherError(f"another batcher runs on {self.store.path}; run one batcher per store (the node's "
                               "or `loraledger batcher run`, not both)") from e
        self._lock_fd = fd

    def _schedule(self, job: str, delay_s: float) -> None:
        """Run `job` once after `delay_s`. Jobs reschedule themselves when they end: an interval trigger would fire
        again while a pass is still blocked (a frozen DA or RPC) and log a "skipped" warning every poll."""
        sched = self._scheduler
        if sched is None:
            return
        fn = self._pipeline_job if job == "pipeline" else self._seal_job
        sched.add_job(fn, "date", run_date=_now() + timedelta(seconds=delay_s), id=job, replace_existing=True)

    def _pipeline_job(self) -> None:
        try:
            self.run_once()
        finally:
            self._schedule("pipeline", self.config.poll_interval_s)

    def _seal_job(self) -> None:
        try:
            with self._lock:
                if self.fatal is None:
                    try:
                        self.seal(force=True)
                    except (AttributionError, OSError) as e:
                        self._failed(e)
        finally:
            self._schedule("seal", self.config.seal_interval_s)

    # -- one pass -----------------------------------------------------------------------------------------------

    def run_once(self) -> None:
        """One pass of the pipeline (reconcile if needed, seal, disperse, submit, track, confirm, prune)."""
        with self._lock:
            if self.fatal is not None or (time.monotonic() < self._next_try and not self._part_returned()):
                return
            try:
                self._step()
            except BatcherInconsistent as e:
                self.fatal = e
                self._last_error = str(e)
                logger.critical("batcher stopped: %s", e)
            except (AttributionError, OSError, ValueError, sqlite3.Error) as e:
                self._failed(e)
            else:
                self._failures, self._next_try, self._outage = 0, 0.0, None
            finally:
                self._update_metrics()

    def _set(self, batch_id: int, state: str, **kw: Any) -> Batch:
        b = self.store.set_batch_state(batch_id, state, **kw)
        self._hook("reorged" if kw.get("reorg") else state, b)
        return b

    def _hook(self, event: str, b: Batch) -> None:
        if self.on_transition is not None:
            self.on_transition(event, b)

    def _part_returned(self) -> bool:
        """While backing off from an outage: probe the silent part; True once it answers after a probe found it
        down (a DA that answers /health but refuses puts keeps the backoff)."""
        if self._outage is None:
            return False
        if self._outage == "da":
            try:
                self.da.health(timeout=PROBE_TIMEOUT_S)
                up = True
            except DAError:
                up = False
        else:
            up = self.txmgr.client.is_up()
        if not up:
            self._outage_seen_down = True
            return False
        if not self._outage_seen_down:
            return False
        logger.info("batcher: the %s answers again; retrying now instead of after the backoff", self._outage.upper())
        self._outage = None
        return True

    def _failed(self, e: BaseException) -> None:
        self._failures += 1
        if isinstance(e, DAUnavailable | RpcUnavailable):
            part = "da" if isinstance(e, DAUnavailable) else "rpc"
            if part != self._outage:
                self._outage, self._outage_seen_down = part, False
        else:
            self._outage = None
        self._need_reconcile = True
        delay = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2 ** (self._failures - 1))
        delay *= random.uniform(0.5, 1.5)  # jitter: many nodes do not retry in lockstep  # noqa: S311
        self._next_try = time.monotonic() + delay
        self._last_error = f"{type(e).__name__}: {e}"
        self.metrics.errors.labels(kind=type(e).__name__).inc()
        logger.warning("batcher pass failed (%s); retrying in %.1fs", self._last_error, delay)

    def _step(self) -> None:
        if self._need_reconcile:
            self.reconcile()
        self.seal()
        for b in self.store.batches("sealed"):
            if not self._disperse(b):
                break
        for b in self.store.batches():
            if b.state == "final":
                continue
            if b.state == "sealed":
                break  # later batches wait for this one's DA put
            if b.state == "dispersed":
                self._submit(b)
                break  # one postBatch in flight at a time: they must land in seq order
            if b.state == "submitted":
                if self._track(b).state != "posted":
                    break
            elif b.state == "posted":
                self._confirm(b)
        if self.config.retention_s is not None:
            pruned = self.store.prune(self.config.retention_s)
            if pruned:
                self.metrics.pruned_records.inc(pruned)

    # -- sealing ------------------------------------------------------------------------------------------------

    def _max_records(self) -> int:
        cap = self.config.max_batch_records
        if cap is None:
            names = {e.get("name") for e in self.ledger.abi if e.get("type") == "function"}
            if "MAX_BATCH_RECORDS" in names:
                try:
                    cap = int(self.ledger._call("MAX_BATCH_RECORDS"))
                except ChainError:
                    cap = None
        return max(1, cap if cap is not None else DEFAULT_MAX_BATCH_RECORDS)

    def seal(self, force: bool = False) -> list[Batch]:
        """Seal waiting records into batches (when `seal_min_records` wait, the interval passed, or `force`)."""
        with self._lock:
            start, end = self.store.unbatched_start(), self.store.next_seq()
            waiting = end - start
            due = force or time.monotonic() - self._last_seal >= self.config.seal_interval_s
            if waiting <= 0 or (waiting < self.config.seal_min_records and not due):
                return []
            sealed = []
            while start < end:
                b = self._seal_one(start, min(end, start + self._cap))
                sealed.append(b)
                start = b.end_seq
            self._last_seal = time.monotonic()
            return sealed

    def _seal_one(self, start: int, stop: int) -> Batch:
        chain_id, ledger = self.store.domain_of(start)
        if (chain_id, ledger) != (self.chain_id, self.ledger_bytes):
            raise BatcherInconsistent(
                f"record seq {start} is for chain {chain_id} ledger 0x{ledger.hex()}, but this batcher posts to chain "
                f"{self.chain_id} ledger {self.ledger.address}; run the batcher of that deployment")
        stop = self.store.domain_end(start, stop)
        cols = self.store.columns(start, stop)
        used = {int(i) for i in set(cols.profile_idx.tolist())}
        fit = max_records_for(sum(profile_bytes(cols.profiles[i]) for i in used))
        if fit < len(cols):  # cap to one 16 MiB payload
            stop = start + max(1, fit)
            cols = self.store.columns(start, stop)
        payload = encode_columns(cols)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise BatcherError(f"records from seq {start} do not fit one payload; lower max_batch_records")
        root = bytes.fromhex(record_tree(cols).root[2:])
        b = self.store.create_batch(start, stop - start, root=root, payload=payload)
        self._hook("sealed", b)
        logger.info("sealed batch %d: seqs [%d, %d), %d bytes, root 0x%s", b.batch_id, start, stop, len(payload),
                    root.hex())
        return b

    # -- DA -----------------------------------------------------------------------------------------------------

    def _disperse(self, b: Batch) -> bool:
        payload = self.store.batch_payload(b.batch_id)
        if payload is None:
            raise BatcherError(f"batch {b.batch_id} has no stored payload; it was sealed by an old version")
        t0 = time.monotonic()
        try:
            commitment = self.da.put(payload)
        except (DAPayloadTooLarge, DARequestRejected) as e:
            if isinstance(e, DARequestRejected) and getattr(e, "status_code", None) != 413:
                raise
            self._resplit(b)
            return False
        took = time.monotonic() - t0
        self.metrics.da_put_seconds.observe(took)
        self._set(b.batch_id, "dispersed", commitment=commitment, info={"da_put_s": round(took, 4)})
        logger.info("batch %d dispersed (%d bytes, %.2fs)", b.batch_id, len(payload), took)
        return True

    def _resplit(self, b: Batch) -> None:
        """The DA refused the payload's size: unseal from this batch and seal again in halves."""
        self._cap = max(1, b.count // 2)
        n = self.store.unseal_from(b.batch_id)
        self.metrics.resplits.inc()
        logger.warning("DA refused batch %d (%d records) for size; unsealed %d batch(es), re-sealing at most %d "
                       "records per batch", b.batch_id, b.count, n, self._cap)
        self.seal(force=True)

    # -- chain --------------------------------------------------------------------------------------------------

    def _header_times(self, b: Batch) -> tuple[int, int]:
        """(first, last) record timestamp of the batch, for the v3 header: the ledger requires them ordered per
        node and the last no later than the posting block, and every record must lie between them."""
        payload = self.store.batch_payload(b.batch_id)
        if payload is None:
            raise BatcherInconsistent(f"batch {b.batch_id} has no payload to read its record timestamps from")
        ts = decode_batch(payload).timestamps
        return int(ts.min()), int(ts.max())

    def _calldata(self, b: Batch) -> bytes:
        assert b.root is not None and b.commitment is not None
        first_ts, last_ts = self._header_times(b)
        data = self.ledger.contract.encode_abi(
            "postBatch", args=[b.first_seq, b.count, first_ts, last_ts, b.root, b.commitment])
        return bytes.fromhex(data[2:])

    def _submit(self, b: Batch) -> None:
        if b.commitment is not None and _unresolvable(b.commitment):
            # dispersed before the DA server issued certificate v3: a batch posted with it could not answer an
            # availability challenge (docs/da.md "Version 2 certificates"); the server certifies it again
            logger.warning("batch %d was dispersed under a DA certificate v2; putting it again for a v3 one",
                           b.batch_id)
            if not self._disperse(b):
                return
            b = self.store.get_batch(b.batch_id)
        chain_next = self.ledger.next_seq(self.node)
        self._chain_next = chain_next
        if chain_next != b.first_seq:
            logger.warning("ledger nextSeq is %d but batch %d starts at %d; reconciling", chain_next, b.batch_id,
                           b.first_seq)
            self.reconcile()
            return
        try:
            tx = self.txmgr.prepare(self.ledger.address, self._calldata(b))
        except ContractRevert as e:  # the estimate reverted: e.g. LedgerSeqGap after a race; learn from the chain
            self._need_reconcile = True
            raise BatcherError(f"postBatch of batch {b.batch_id} would revert: {e}") from e
        # persisted before it is broadcast: after a crash the exact transaction can be rebroadcast or found
        entry = {**tx.info(), "sent_at": time.time()}
        b = self._set(b.batch_id, "submitted", tx_hash=tx.tx_hash, nonce=tx.nonce,
                                       info={"txs": [entry]})
        self._broadcast(b, tx)

    def _broadcast(self, b: Batch, tx: PreparedTx) -> None:
        try:
            self.txmgr.broadcast(tx)
            self._hook("broadcast", b)
        except NonceTooLow:
            # the nonce is used: one of our transactions landed (the receipt will show) or the key was used elsewhere
            self._need_reconcile = True
            self.txmgr.reset_nonce()

    def _txs(self, b: Batch) -> list[tuple[PreparedTx, float]]:
        out = []
        to = self.ledger.address
        data = self._calldata(b)
        for e in b.info.get("txs", []):
            tx = PreparedTx(raw=bytes.fromhex(e["raw"][2:]), tx_hash=bytes.fromhex(e["tx_hash"][2:]), nonce=e["nonce"],
                            max_fee_per_gas=int(e["max_fee_per_gas"]),
                            max_priority_fee_per_gas=int(e["max_priority_fee_per_gas"]), gas=int(e["gas"]), to=to,
                            data=data)
            out.append((tx, float(e.get("sent_at", 0.0))))
        return out

    def _track(self, b: Batch) -> Batch:
        txs = self._txs(b)
        if not txs:
            return self._set(b.batch_id, "dispersed", reorg=True)
        receipt = self.txmgr.first_receipt([t.tx_hash for t, _ in txs])
        if receipt is not None:
            if int(receipt["status"]) == 1:
                return self._mark_posted(b, receipt, txs[-1][0])
            revert = self.txmgr.revert_of(receipt, txs[-1][0])
            logger.error("postBatch of batch %d reverted (%s); reconciling with the chain", b.batch_id, revert)
            self.txmgr.reset_nonce()
            self._need_reconcile = True
            b = self._set(b.batch_id, "dispersed", reorg=True, info={"txs": []})
            self.reconcile()
            return self.store.get_batch(b.batch_id)
        last, sent_at = txs[-1]
        if not self.txmgr.is_known(last.tx_hash):
            if self.txmgr.chain_nonce("latest") > last.nonce:  # mined, but none of ours: the key sent another tx
                logger.warning("batch %d: nonce %d was used by another transaction of %s; signing it again",
                               b.batch_id, last.nonce, self.node)
                self.txmgr.reset_nonce()
                return self._set(b.batch_id, "dispersed", reorg=True, info={"txs": []})
            self._broadcast(b, last)  # never reached the node (crash or RPC outage): send the same bytes
            return b
        if time.time() - sent_at < self.config.resubmit_after_s:
            return b
        if self.ledger.next_seq(self.node) >= b.end_seq:  # landed by a hash we do not know: learn it from events
            self.reconcile()
            return self.store.get_batch(b.batch_id)
        try:
            new = self.txmgr.bump(last)
        except FeeCapExceeded as e:
            logger.warning("batch %d: %s", b.batch_id, e)
            entries = [*b.info["txs"][:-1], {**b.info["txs"][-1], "sent_at": time.time()}]
            return self._set(b.batch_id, "submitted", info={"txs": entries})
        self.metrics.tx_resubmissions.inc()
        entries = [*b.info["txs"], {**new.info(), "sent_at": time.time()}]
        b = self._set(b.batch_id, "submitted", tx_hash=new.tx_hash, info={"txs": entries})
        logger.info("batch %d: replaced tx nonce %d with tip %d maxFee %d", b.batch_id, new.nonce,
                    new.max_priority_fee_per_gas, new.max_fee_per_gas)
        self._broadcast(b, new)
        return b

    def _mark_posted(self, b: Batch, receipt: Mapping[str, Any], tx: PreparedTx | None) -> Batch:
        events = self.ledger.contract.events.BatchPosted().process_receipt(receipt)  # type: ignore[arg-type]
        ours = [e for e in events if int(e["args"]["firstSeq"]) == b.first_seq]
        if not ours:
            raise BatcherInconsistent(f"receipt {receipt['transactionHash'].to_0x_hex()} of batch {b.batch_id} holds "
                                      "no BatchPosted event for it; is the ledger address right?")
        gas = int(receipt["gasUsed"])
        l1_fee = self.txmgr.l1_fee(receipt, tx.raw if tx else None)
        self.metrics.gas_per_batch.observe(gas)
        self.metrics.gas_per_record.set(gas / b.count)
        if l1_fee is not None:
            self.metrics.l1_fee_wei.set(l1_fee)
        info = {"gas_used": gas, "gas_per_record": gas / b.count,
                "effective_gas_price": str(int(receipt.get("effectiveGasPrice", 0) or 0)),
                "l1_fee": None if l1_fee is None else str(l1_fee)}
        b = self._set(b.batch_id, "posted", tx_hash=bytes(receipt["transactionHash"]),
                                       block_number=int(receipt["blockNumber"]),
                                       onchain_batch_id=int(ours[0]["args"]["batchId"]), info=info)
        logger.info("batch %d posted as ledger batch %d in block %d (gas %d, %.2f/record)", b.batch_id,
                    b.onchain_batch_id, b.block_number, gas, gas / b.count)
        return b

    def _confirm(self, b: Batch) -> None:
        assert b.tx_hash is not None
        receipt = self.txmgr.receipt(b.tx_hash)
        if receipt is None or not self.txmgr.is_canonical(receipt):
            if receipt is None and self.ledger.next_seq(self.node) < b.end_seq:
                self._reorged(b)
            return
        if int(receipt["blockNumber"]) != b.block_number:  # re-mined in another block after a reorg
            b = self._mark_posted(b, receipt, None)
        if self.txmgr.confirmations(receipt) >= self.config.confirmations:
            self._set(b.batch_id, "final")
            logger.info("batch %d final (seqs [%d, %d))", b.batch_id, b.first_seq, b.end_seq)

    def _reorged(self, b: Batch) -> None:
        logger.warning("batch %d (seqs [%d, %d)) was dropped by a reorg; posting it again", b.batch_id, b.first_seq,
                       b.end_seq)
        self.metrics.reorgs.inc()
        self.txmgr.reset_nonce()
        self._set(b.batch_id, "dispersed", reorg=True, info={"txs": [], "reorgs": 1 + int(
            b.info.get("reorgs", 0))})

    # -- reconciliation -----------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Align local batches with the chain: `nextSeq(node)` and `BatchPosted` events decide what landed."""
        chain_next = self.ledger.next_seq(self.node)
        self._chain_next = chain_next
        events: dict[int, Any] | None = None
        for b in self.store.batches():
            if b.end_seq <= chain_next:
                if b.state in ("posted", "final"):
                    continue
                if events is None:
                    events = self._posted_events()
                ev = events.get(b.first_seq)
                if ev is None:
                    raise BatcherInconsistent(f"nextSeq is {chain_next} but no BatchPosted event of {self.node} "
                                              f"starts at seq {b.first_seq} since block {self.config.start_block}; "
                                              "set start_block to the ledger's deploy block")
                args = ev.args
                if int(args["count"]) != b.count or bytes(args["root"]) != b.root:
                    raise BatcherInconsistent(
                        f"ledger batch {args['batchId']} at seq {b.first_seq} has count {args['count']} root "
                        f"0x{bytes(args['root']).hex()}, local batch {b.batch_id} has {b.count} / "
                        f"0x{(b.root or b'').hex()}: this store is not the one that posted; check --db")
                receipt = self.txmgr.receipt(bytes.fromhex(ev.tx_hash.removeprefix("0x")))
                if receipt is None:
                    continue  # the RPC is behind its own logs; next pass
                self._mark_posted(b, receipt, None)
                logger.info("reconciled: batch %d had landed (ledger batch %d)", b.batch_id, args["batchId"])
            elif b.first_seq < chain_next:
                raise BatcherInconsistent(f"nextSeq {chain_next} falls inside local batch {b.batch_id} "
                                          f"[{b.first_seq}, {b.end_seq}): the store and the chain disagree")
            elif b.state in ("posted", "final"):
                self._reorged(b)
        top = self.store.unbatched_start()
        if chain_next > top:
            raise BatcherInconsistent(f"the ledger has seqs up to {chain_next} for {self.node} but this store sealed "
                                      f"only up to {top}: wrong store or node key")
        self._need_reconcile = False

    def _posted_events(self) -> dict[int, Any]:
        """This node's `BatchPosted` events by first seq (the chain layer's paged `eth_getLogs`)."""
        out: dict[int, Any] = {}
        for ev in self.ledger.events("BatchPosted", from_block=self.config.start_block, node=self.node):
            out[int(ev.args["firstSeq"])] = ev
        return out

    # -- status and metrics -------------------------------------------------------------------------------------

    def _update_metrics(self) -> None:
        try:
            counts = self.store.batch_counts()
            nxt = self.store.next_seq()
            finals = self.store.batches("final")
        except StoreError:
            return
        last_final = finals[-1].end_seq - 1 if finals else -1
        for state, n in counts.items():
            self.metrics.batches.labels(state=state).set(n)
        self.metrics.last_final_seq.set(last_final)
        self.metrics.backlog_records.set(nxt - (last_final + 1))
        self.metrics.unbatched_records.set(nxt - self.store.unbatched_start())
        self.metrics.store_full_rejections.set(self.store.full_rejections)
        self.metrics.store_disk_alarm.set(1 if self.store.disk_alarm else 0)
        self.metrics.store_used_bytes.set(self.store.used_bytes)

    def status(self) -> dict[str, Any]:
        """The pipeline state as JSON-friendly values (what `loraledger batcher status` prints)."""
        return pipeline_status(self.store) | {
            "node": self.node, "ledger": self.ledger.address, "chain_id": self.chain_id,
            "chain_next_seq": self._chain_next, "max_batch_records": self._cap,
            "running": self._scheduler is not None, "consecutive_failures": self._failures,
            "outage": self._outage,
            "last_error": self._last_error, "fatal": None if self.fatal is None else str(self.fatal),
            "tx_resubmissions": self.txmgr.resubmissions, "config": asdict(self.config),
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _unresolvable(commitment: bytes) -> bool:
    """True for our DA certificate older than v3 (it has no chunksRoot); another layer's commitment is opaque."""
    if not is_our_commitment(commitment):
        return False
    try:
        return not parse_commitment(commitment).resolvable
    except DACommitmentInvalid:
        return False
