"""Following the chain: events of the ledger and the asset registry into the database, reorg-safe, then every new
batch verified against DA.

Reorgs, as Ponder handles them: only blocks `confirmations` deep are indexed; the hash of every indexed block that
held an event, and of every page end, is stored. Before each round the highest stored block is compared with the
chain; when its hash changed, stored blocks are walked down until one still matches (the common ancestor: block
hashes chain, so everything below it is unchanged), every row above it is deleted in one transaction and indexing
resumes from there. A page is written in one transaction together with the cursor, so a kill at any moment
resumes cleanly. Verification writes each batch's verdict and records in one transaction; a batch whose DA read
failed keeps verdict NULL and is retried next round. With a `BatchDisputes` address every dispute event is stored
the same way (`dispute_events`, in the page's transaction, rolled back with it).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from attribution.chain.batch import PostedBatch
from attribution.chain.client import ChainClient
from attribution.chain.commitments import NOT_IN_CALLDATA
from attribution.chain.contracts import AssetRegistry, Ledger
from attribution.chain.disputes import BatchDisputes
from attribution.chain.errors import ChainError
from attribution.chain.logs import get_logs
from attribution.da.client import DAClient
from attribution.errors import AttributionError
from attribution.hashing import keccak256, to_checksum_address
from attribution.indexer.bulk import RecordRows, defer_indexes, insert_bulk, insert_rows, restore_indexes
from attribution.indexer.disputes import DisputeLogs
from attribution.indexer.schema import (
    batches,
    blocks,
    dispute_events,
    meta,
    profile_datasets,
    profiles,
    records,
    registry_events,
)
from attribution.records import Profile
from attribution.verify import (
    BatchCheck,
    Verdict,
    Verifier,
    VerifyError,
    check_payload,
    fetch_posted,
    read_commitment,
)

__all__ = ["IndexerError", "SyncStats", "Indexer", "profile_id_of"]

log = logging.getLogger(__name__)

_I64 = 2**63 - 1

#: a round with at least this many records to verify (and at least as many as are indexed already) drops the
#: secondary indexes of `records` and rebuilds them at its end (`bulk.defer_indexes`).
DEFER_INDEXES_AT = 200_000


class IndexerError(AttributionError):
    """The indexer cannot go on (database of another deployment, RPC down); the message says what to do."""


class _Reorged(Exception):
    """A block changed under a page being read; the round stops and the next one rolls back."""


@dataclass
class SyncStats:
    """What one round did."""

    head: int = 0
    cursor: int = 0
    events: int = 0
    batches_verified: int = 0
    records_indexed: int = 0
    rolled_back_to: int | None = None
    pending: int = 0


def profile_id_of(p: Profile) -> int:
    """A 63-bit id derived from the profile's content (the same in every index of the same chain)."""
    body = p.model_id + p.adapter_id + bytes([len(p.dataset_ids)]) + b"".join(
        d + w.to_bytes(2, "big") for d, w in zip(p.dataset_ids, p.weights_bps, strict=True))
    return int.from_bytes(keccak256(body)[:8], "big") >> 1


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and abs(v) > 2**53:
        return str(v)  # JSON readers lose precision past 2**53
    return v


def _canonical_type(inp: dict[str, Any]) -> str:
    t = str(inp["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in inp["components"]) + ")" + t[5:]
    return t


def _i64(value: int, what: str) -> int:
    if not 0 <= value <= _I64:
        raise IndexerError(f"{what} = {value} does not fit the index's BIGINT columns (max 2**63 - 1)")
    return value


class Indexer:
    """Indexes one deployment (ledger + asset registry + disputes, when it has them) into `engine`."""

    def __init__(self, engine: Engine, chain: ChainClient, ledger: str, da: DAClient, *, registry: str | None,
                 deploy_block: int, confirmations: int = 2, page_blocks: int = 2_000, bulk: bool = True,
                 defer_indexes_at: int | None = DEFER_INDEXES_AT, disputes: str | None = None) -> None:
        if confirmations < 0 or page_blocks < 1:
            raise IndexerError("confirmations must be >= 0 and page_blocks >= 1")
        if defer_indexes_at is not None and defer_indexes_at < 1:
            raise IndexerError("defer_indexes_at must be >= 1 (or None: never defer)")
        self.bulk = bulk
        self.defer_indexes_at = defer_indexes_at
        self.engine = engine
        self.chain = chain
        self.ledger = Ledger(chain, ledger)
        self.registry = AssetRegistry(chain, registry) if registry else None
        self.disputes = DisputeLogs(BatchDisputes(chain, disputes)) if disputes else None
        self.da = da
        self.deploy_block = deploy_block
        self.confirmations = confirmations
        self.page_blocks = page_blocks
        self.verifier = Verifier(self.ledger, da, from_block=deploy_block, page_blocks=page_blocks)
        self._batch_topic = keccak256(b"BatchPosted(uint256,address,bytes32,uint64,uint32,uint64,uint64,bytes32)")
        self._registry_events: dict[bytes, Any] = {}
        self._analyzed = -1e9
        if self.registry is not None:
            for item in self.registry.abi:
                if item.get("type") == "event":
                    sig = f"{item['name']}({','.join(_canonical_type(i) for i in item['inputs'])})"
                    self._registry_events[keccak256(sig.encode())] = getattr(self.registry.contract.events,
                                                                             item["name"])()
        self._init_meta()

    # -- meta ---------------------------------------------------------------------------------------------

    def _init_meta(self) -> None:
        want = {"chain_id": str(self.chain.chain_id), "ledger": self.ledger.address,
                "registry": self.registry.address if self.registry else "", "deploy_block": str(self.deploy_block),
                "disputes": self.disputes.address if self.disputes else ""}
        with self.engine.begin() as conn:
            have = {str(k): str(v) for k, v in conn.execute(sa.select(meta.c.key, meta.c.value))}
            if self.disputes is not None and not have.get("disputes"):
                # indexed without disputes (before schema 0003, or without the address): fetch the events it passed
                # over, then follow them with everything else
                if "cursor" in have:
                    self._backfill_disputes(conn, int(have["cursor"]))
                conn.execute(sa.delete(meta).where(meta.c.key == "disputes"))
                have.pop("disputes", None)
            for key, value in want.items():
                if key in have and have[key] != value:
                    raise IndexerError(f"this database indexes {key} {have[key]}, not {value}; use another "
                                       "database (--db) per deployment")
                if key not in have:
                    conn.execute(sa.insert(meta).values(key=key, value=value))

    def cursor(self, conn: Connection | None = None) -> int:
        """The last block fully indexed (deploy block - 1 before the first page)."""
        def read(c: Connection) -> int:
            v = c.execute(sa.select(meta.c.value).where(meta.c.key == "cursor")).scalar()
            return self.deploy_block - 1 if v is None else int(v)
        if conn is not None:
            return read(conn)
        with self.engine.connect() as c:
            return read(c)

    def _set_cursor(self, conn: Connection, value: int) -> None:
        if conn.execute(sa.update(meta).where(meta.c.key == "cursor").values(value=str(value))).rowcount == 0:
            conn.execute(sa.insert(meta).values(key="cursor", value=str(value)))

    # -- one round ----------------------------------------------------------------------------------------

    def sync_once(self, *, verify: bool = True, max_pages: int | None = None) -> SyncStats:
        """Roll back a reorg if any, index confirmed blocks page by page, then verify new batches."""
        stats = SyncStats()
        try:
            stats.head = self.chain.block_number()
            stats.rolled_back_to = self._check_reorg()
            target = stats.head - self.confirmations
            cursor = self.cursor()
            pages = 0
            while cursor < target and (max_pages is None or pages < max_pages):
                end = min(target, cursor + self.page_blocks)
                stats.events += self._index_page(cursor + 1, end)
                cursor = end
                pages += 1
        except _Reorged as e:
            log.warning("reorg while reading: %s; rolling back next round", e)
        except ChainError as e:
            raise IndexerError(f"RPC {self.chain.safe_url}: {e}") from e
        stats.cursor = self.cursor()
        if verify:
            done, recs = self.verify_pending()
            stats.batches_verified, stats.records_indexed = done, recs
            if recs and self.engine.dialect.name == "postgresql" and time.monotonic() - self._analyzed > 30:
                # fresh statistics keep the planner on the (profile_id, timestamp) index while the table grows
                with self.engine.begin() as conn:
                    conn.execute(sa.text("ANALYZE records"))
                self._analyzed = time.monotonic()
        with self.engine.connect() as conn:
            stats.pending = int(conn.execute(sa.select(sa.func.count()).select_from(batches)
                                             .where(batches.c.verdict.is_(None))).scalar() or 0)
        return stats

    def _block(self, number: int) -> Any:
        try:
            return self.chain.w3.eth.get_block(number)
        except Exception:  # noqa: BLE001 - web3 raises BlockNotFound or RPC errors: treat as "not there"
            return None

    def _check_reorg(self) -> int | None:
        """Roll back to the common ancestor when the highest stored block changed; returns it (None: no reorg)."""
        with self.engine.connect() as conn:
            top = conn.execute(sa.select(blocks.c.number, blocks.c.hash).order_by(blocks.c.number.desc())
                               .limit(1)).first()
        if top is None:
            return None
        blk = self._block(int(top.number))
        if blk is not None and bytes(blk["hash"]) == bytes(top.hash):
            return None
        ancestor = self.deploy_block - 1
        offset = 0
        found = False
        while not found:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(blocks.c.number, blocks.c.hash).order_by(blocks.c.number.desc())
                                    .offset(offset).limit(256)).all()
            if not rows:
                break
            for row in rows:
                b = self._block(int(row.number))
                if b is not None and bytes(b["hash"]) == bytes(row.hash):
                    ancestor, found = int(row.number), True
                    break
            offset += len(rows)
        self.rollback(ancestor)
        log.warning("reorg: block %d changed; rolled back to common ancestor %d", int(top.number), ancestor)
        return ancestor

    def rollback(self, ancestor: int) -> None:
        """Delete everything above block `ancestor` and set the cursor there, in one transaction."""
        with self.engine.begin() as conn:
            gone = sa.select(batches.c.batch_id).where(batches.c.block_number > ancestor)
            conn.execute(sa.delete(records).where(records.c.batch_id.in_(gone)))
            conn.execute(sa.delete(batches).where(batches.c.block_number > ancestor))
            conn.execute(sa.delete(registry_events).where(registry_events.c.block_number > ancestor))
            conn.execute(sa.delete(dispute_events).where(dispute_events.c.block_number > ancestor))
            conn.execute(sa.delete(blocks).where(blocks.c.number > ancestor))
            used = sa.select(records.c.profile_id).distinct()
            conn.execute(sa.delete(profile_datasets).where(profile_datasets.c.profile_id.not_in(used)))
            conn.execute(sa.delete(profiles).where(profiles.c.profile_id.not_in(used)))
            self._set_cursor(conn, min(ancestor, self.cursor(conn)))

    def _index_page(self, start: int, end: int) -> int:
        addresses = [self.ledger.address] + ([self.registry.address] if self.registry else []) + \
            ([self.disputes.address] if self.disputes else [])
        logs = get_logs(self.chain, address=addresses, from_block=start, to_block=end)
        numbers = sorted({int(lg["blockNumber"]) for lg in logs} | {end})
        headers: dict[int, Any] = {}
        for n in numbers:
            b = self._block(n)
            if b is None:
                raise _Reorged(f"block {n} vanished")
            headers[n] = b
        batch_rows, registry_rows, dispute_rows = [], [], []
        for lg in sorted(logs, key=lambda x: (int(x["blockNumber"]), int(x["logIndex"]))):
            n = int(lg["blockNumber"])
            if bytes(lg["blockHash"]) != bytes(headers[n]["hash"]):
                raise _Reorged(f"block {n} changed between eth_getLogs and eth_getBlockByNumber")
            ts = int(headers[n]["timestamp"])
            topic = bytes(lg["topics"][0]) if lg["topics"] else b""
            if to_checksum_address(lg["address"]) == self.ledger.address and topic == self._batch_topic:
                decoded = self.ledger.contract.events.BatchPosted().process_log(lg)
                ev = PostedBatch.from_log(decoded, *read_commitment(self.ledger, decoded))
                assert ev.tx_hash is not None  # from_log always sets where the event sits
                batch_rows.append({
                    "batch_id": _i64(ev.batch_id, "batchId"), "node": bytes.fromhex(ev.node[2:]), "root": ev.root,
                    "first_seq": _i64(ev.first_seq, "firstSeq"), "count": ev.count,
                    # b"": the commitment is not in the posting transaction's calldata (posted through a contract)
                    "da_commitment": ev.da_commitment or b"", "posted_at": ts, "block_number": n,
                    "block_hash": ev.block_hash, "tx_hash": bytes.fromhex(ev.tx_hash[2:]), "log_index": ev.log_index,
                    "verdict": None, "detail": None, "rebuilt_root": None, "tree": None})
            elif self.disputes is not None and to_checksum_address(lg["address"]) == self.disputes.address:
                row = self.disputes.row(lg, ts)
                if row is not None:
                    dispute_rows.append(row)
            elif topic in self._registry_events:
                decoded = self._registry_events[topic].process_log(lg)
                registry_rows.append({"block_number": n, "log_index": int(lg["logIndex"]),
                                      "block_hash": bytes(lg["blockHash"]), "block_timestamp": ts,
                                      "event": decoded["event"],
                                      "args": json.dumps(_jsonable(dict(decoded["args"])), sort_keys=True)})
        with self.engine.begin() as conn:
            conn.execute(sa.delete(blocks).where(blocks.c.number.in_(numbers)))
            conn.execute(sa.insert(blocks), [{"number": n, "hash": bytes(headers[n]["hash"]),
                                              "timestamp": int(headers[n]["timestamp"])} for n in numbers])
            if batch_rows:
                conn.execute(sa.insert(batches), batch_rows)
            if registry_rows:
                conn.execute(sa.insert(registry_events), registry_rows)
            if dispute_rows:
                conn.execute(sa.insert(dispute_events), dispute_rows)
            self._set_cursor(conn, end)
        if batch_rows or registry_rows or dispute_rows:
            log.info("blocks %d..%d: %d batches, %d registry events, %d dispute events", start, end, len(batch_rows),
                     len(registry_rows), len(dispute_rows))
        return len(batch_rows) + len(registry_rows) + len(dispute_rows)

    def _backfill_disputes(self, conn: Connection, cursor: int) -> None:
        """Store the dispute events of the blocks already indexed (up to `cursor`), in the caller's transaction."""
        assert self.disputes is not None
        logs = get_logs(self.chain, address=[self.disputes.address], from_block=self.deploy_block, to_block=cursor)
        stamps: dict[int, int] = {}
        rows = []
        for lg in logs:
            n = int(lg["blockNumber"])
            if n not in stamps:
                b = self._block(n)
                if b is None or bytes(b["hash"]) != bytes(lg["blockHash"]):
                    raise IndexerError(f"block {n} changed while back-filling dispute events; restart the indexer")
                stamps[n] = int(b["timestamp"])
            row = self.disputes.row(lg, stamps[n])
            if row is not None:
                rows.append(row)
        if rows:
            conn.execute(sa.insert(dispute_events), rows)
        log.info("back-filled %d dispute events up to block %d", len(rows), cursor)

    # -- verification -------------------------------------------------------------------------------------

    def verify_pending(self, limit: int | None = None) -> tuple[int, int]:
        """Verify batches without a verdict (batch id order); returns (batches verified, records indexed).

        The next batch is fetched from DA and checked in a worker thread while this one is written: the database
        write (SQLite's step, PostgreSQL's COPY) and the DA read release the GIL, so they overlap."""
        q = sa.select(*(c for c in batches.c if c.name != "tree")).where(batches.c.verdict.is_(None)) \
            .order_by(batches.c.batch_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit) if limit else q).all()
        events = [PostedBatch(batch_id=int(row.batch_id), node=to_checksum_address(bytes(row.node)),
                              root=bytes(row.root), first_seq=int(row.first_seq), count=int(row._mapping["count"]),
                              da_commitment_hash=keccak256(bytes(row.da_commitment)),
                              da_commitment=bytes(row.da_commitment) or None,
                              missing_commitment="" if row.da_commitment else NOT_IN_CALLDATA,
                              posted_at=int(row.posted_at),
                              block_number=int(row.block_number), block_hash=bytes(row.block_hash),
                              tx_hash="0x" + bytes(row.tx_hash).hex(), log_index=int(row.log_index)) for row in rows]
        if limit is None:
            self._maybe_defer_indexes(sum(e.count for e in events))
        done = indexed = 0
        complete = True
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexer-verify")
        ahead: deque[tuple[PostedBatch, Future[BatchCheck]]] = deque()
        try:
            todo = iter(events)
            for event in itertools.islice(todo, 2):
                ahead.append((event, pool.submit(self._check, event)))
            while ahead:
                event, future = ahead.popleft()
                try:
                    check = future.result()
                except (VerifyError, ChainError) as e:
                    log.warning("batch %d not verified yet: %s", event.batch_id, e)
                    complete = False
                    break
                nxt = next(todo, None)
                if nxt is not None:
                    ahead.append((nxt, pool.submit(self._check, nxt)))
                indexed += self._store_verdict(event, check)
                done += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if complete:
            with self.engine.begin() as conn:
                restore_indexes(conn)
        return done, indexed

    def _check(self, event: PostedBatch) -> BatchCheck:
        payload, why = fetch_posted(self.verifier, event)
        stored = self.ledger.batch(event.batch_id)
        # The header's record time range comes from the ledger's stored batch (no column of its own here).
        # A batch without its commitment (not in calldata) is checked against the stored hash it cannot show.
        event = dataclasses.replace(event, first_timestamp=stored.first_timestamp,
                                    last_timestamp=stored.last_timestamp,
                                    da_commitment_hash=event.da_commitment_hash if event.da_commitment is not None
                                    else stored.da_commitment_hash)
        return check_payload(event, self.chain.chain_id, self.ledger.address, payload, stored=stored,
                             missing_reason=why, keep_decoded=True)

    def _maybe_defer_indexes(self, pending: int) -> None:
        """Drop the secondary record indexes when this round at least doubles the records indexed."""
        if self.defer_indexes_at is None or pending < self.defer_indexes_at:
            return
        with self.engine.begin() as conn:
            have = int(conn.execute(sa.select(sa.func.count()).select_from(records)).scalar() or 0)
            if pending >= have:
                defer_indexes(conn)

    def _store_verdict(self, event: PostedBatch, check: BatchCheck) -> int:
        rows: RecordRows | None = None
        new_profiles: list[Profile] = []
        tree_blob = None
        if check.decoded is not None and check.tree is not None and check.verdict in (Verdict.OK,
                                                                                        Verdict.ROOT_MISMATCH):
            d = check.decoded
            tree_blob = check.tree._tree.buffer  # the flat OZ node array: proofs are served from it
            new_profiles = list(d.profiles)
            if d.count:
                _i64(d.first_seq + d.count - 1, "seq")
                _i64(int(d.timestamps.max()), "timestamp")
            rows = RecordRows.of(d.node, event.batch_id, d.first_seq, [profile_id_of(p) for p in d.profiles],
                                 d.profile_idx, d.prompt_tokens, d.completion_tokens, d.timestamps, d.io_hashes,
                                 tree_blob, check.tree._tree_indices[:d.count])
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # no wait for the WAL flush: the index is derived data, and a commit lost in a crash leaves the
                # batch's verdict NULL, so the next round verifies it again
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            current = conn.execute(sa.select(batches.c.block_hash).where(batches.c.batch_id == event.batch_id)
                                   ).scalar()
            if current is None or bytes(current) != event.block_hash:
                return 0  # rolled back meanwhile; the new event gets its own verification
            conn.execute(sa.update(batches).where(batches.c.batch_id == event.batch_id).values(
                verdict=check.verdict.value, detail=check.detail, rebuilt_root=check.rebuilt_root, tree=tree_blob))
            if new_profiles:
                self._ensure_profiles(conn, new_profiles)
            if rows is not None and len(rows):
                # by primary-key range (the batch's records are exactly its node's seqs), so no secondary index
                # is needed: they may be deferred
                conn.execute(sa.delete(records).where(
                    records.c.node == rows.node, records.c.seq.between(rows.first_seq, rows.first_seq + len(rows) - 1),
                    records.c.batch_id == event.batch_id))
                (insert_bulk if self.bulk else insert_rows)(conn, rows)
        n = 0 if rows is None else len(rows)
        log.info("batch %d: %s (%d records)", event.batch_id, check.verdict.value, n)
        return n

    def _ensure_profiles(self, conn: Connection, ps: list[Profile]) -> None:
        by_id = {profile_id_of(p): p for p in ps}
        have = set(conn.execute(sa.select(profiles.c.profile_id).where(profiles.c.profile_id.in_(list(by_id))))
                   .scalars())
        missing = [(pid, p) for pid, p in by_id.items() if pid not in have]
        if not missing:
            return
        conn.execute(sa.insert(profiles), [{"profile_id": pid, "model_id": p.model_id, "adapter_id": p.adapter_id}
                                           for pid, p in missing])
        ds = [{"profile_id": pid, "position": k, "dataset_id": d, "weight_bps": w}
              for pid, p in missing for k, (d, w) in enumerate(zip(p.dataset_ids, p.weights_bps, strict=True))]
        if ds:
            conn.execute(sa.insert(profile_datasets), ds)

    # -- loop ---------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Sync until `stop` is set; errors are logged and retried (the RPC or DA may come back)."""
        while not stop.is_set():
            try:
                stats = self.sync_once()
                caught_up = stats.cursor >= stats.head - self.confirmations and stats.pending == 0
            except AttributionError as e:
                log.warning("indexer round failed: %s; retrying in %.1fs", e, poll_s)
                caught_up = True
            if caught_up:
                stop.wait(poll_s)
