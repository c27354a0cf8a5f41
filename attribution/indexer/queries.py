"""Read side of the indexer: records with proofs, batches with verdicts, usage aggregates, registry state at a time.

Every function takes a SQLAlchemy `Connection` and returns JSON-ready values (0x-hex bytes, checksum addresses).
Proofs come from each batch's stored tree (the flat OpenZeppelin node array) and a record's `tree_index`: the
siblings on the way to the root, exactly what `StandardMerkleTree.getProof` returns and `verifyRecord` accepts.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from attribution.errors import AttributionError
from attribution.hashing import to_checksum_address
from attribution.indexer.schema import batches, blocks, meta, profile_datasets, profiles, records
from attribution.records import Profile

__all__ = ["QueryError", "NotFound", "USAGE_DIMENSIONS", "Reader", "proof_from_tree"]

USAGE_DIMENSIONS = ("adapter", "dataset", "contributor", "node", "epoch")
MAX_LIMIT = 1000


class QueryError(AttributionError, ValueError):
    """A query parameter is out of range or malformed; the message names it."""


class NotFound(QueryError, LookupError):
    """No such record or batch in the index (yet)."""


def proof_from_tree(tree: bytes, tree_index: int) -> list[bytes]:
    """Sibling nodes from `tree_index` up to the root of an OZ tree array (OZ `getProof`)."""
    out = []
    i = tree_index
    while i > 0:
        sib = i + 1 if i % 2 else i - 1
        out.append(tree[32 * sib: 32 * sib + 32])
        i = (i - 1) // 2
    return out


def _proof_hex(tree: bytes, tree_index: int) -> list[str]:
    """`proof_from_tree` as 0x-hex strings (the hot loop of every listing: one call per record)."""
    out = []
    i = tree_index
    while i > 0:
        sib = i + 1 if i & 1 else i - 1
        out.append("0x" + tree[32 * sib: 32 * sib + 32].hex())
        i = (i - 1) >> 1
    return out


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + bytes(b).hex()


def parse_bytes(value: str, size: int, name: str) -> bytes:
    """0x-hex of `size` bytes, or a `QueryError` naming the parameter."""
    s = value[2:] if value[:2] in ("0x", "0X") else value
    try:
        b = bytes.fromhex(s)
    except ValueError:
        raise QueryError(f"{name} must be 0x-hex of {size} bytes, got {value[:80]!r}") from None
    if len(b) != size:
        raise QueryError(f"{name} must be {size} bytes, got {len(b)}")
    return b


class Reader:
    """Queries over one index; caches profiles and batch trees (content-keyed, so reorgs cannot stale them)."""

    def __init__(self, tree_cache_size: int = 128) -> None:
        self._profiles: dict[int, Profile] = {}
        self._trees: OrderedDict[bytes, bytes] = OrderedDict()
        self._tree_cache_size = tree_cache_size
        self._lock = threading.Lock()
        self._domain: tuple[int, bytes] | None = None

    def domain(self, conn: Connection) -> tuple[int, bytes]:
        """(chainId, ledger) of the index."""
        if self._domain is None:
            m = {str(k): str(v) for k, v in conn.execute(sa.select(meta.c.key, meta.c.value))}
            if "chain_id" not in m:
                raise NotFound("the index is empty: start `loraledger indexer serve` first")
            self._domain = (int(m["chain_id"]), bytes.fromhex(m["ledger"][2:]))
        return self._domain

    def _profile_map(self, conn: Connection, ids: set[int]) -> dict[int, Profile]:
        missing = [i for i in ids if i not in self._profiles]
        if missing:
            base = {int(r.profile_id): (bytes(r.model_id), bytes(r.adapter_id)) for r in conn.execute(
                sa.select(profiles).where(profiles.c.profile_id.in_(missing)))}
            ds: dict[int, list[tuple[int, bytes, int]]] = {}
            for r in conn.execute(sa.select(profile_datasets).where(profile_datasets.c.profile_id.in_(missing))):
                ds.setdefault(int(r.profile_id), []).append((int(r.position), bytes(r.dataset_id), int(r.weight_bps)))
            with self._lock:
                for pid, (model, adapter) in base.items():
                    items = sorted(ds.get(pid, []))
                    self._profiles[pid] = Profile(model, adapter, tuple(d for _, d, _ in items),
                                                  tuple(w for _, _, w in items))
        return {i: self._profiles[i] for i in ids}

    def _tree(self, conn: Connection, batch_id: int, key: bytes) -> bytes | None:
        with self._lock:
            if key in self._trees:
                self._trees.move_to_end(key)
                return self._trees[key]
        blob = conn.execute(sa.select(batches.c.tree).where(batches.c.batch_id == batch_id)).scalar()
        if blob is None:
            return None
        blob = bytes(blob)
        with self._lock:
            self._trees[key] = blob
            while len(self._trees) > self._tree_cache_size:
                self._trees.popitem(last=False)
        return blob

    # -- records ------------------------------------------------------------------------------------------

    _RECORD_COLS = (records, batches.c.verdict, batches.c.rebuilt_root, batches.c.block_number,
                    batches.c.posted_at)

    def _record_json(self, conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
        """`Record.to_json` of each row with its leaf and proof, built from the columns: the rows were checked
        when their batch was verified, so no `Record` is re-validated, and the hex of a profile, node or ledger is
        made once per call, not once per record (a test compares with `Record.to_json`)."""
        chain_id, ledger = self.domain(conn)
        ledger_hex = to_checksum_address(ledger)
        pmap = self._profile_map(conn, {int(r.profile_id) for r in rows})
        pjson = {pid: ("0x" + p.model_id.hex(), "0x" + p.adapter_id.hex(), ["0x" + d.hex() for d in p.dataset_ids],
                       list(p.weights_bps)) for pid, p in pmap.items()}
        nodes: dict[bytes, str] = {}
        out = []
        for r in rows:
            model, adapter, datasets, weights = pjson[int(r.profile_id)]
            node = bytes(r.node)
            if node not in nodes:
                nodes[node] = to_checksum_address(node)
            rec = {"chainId": chain_id, "ledger": ledger_hex, "node": nodes[node], "seq": int(r.seq),
                   "modelId": model, "adapterId": adapter, "datasetIds": list(datasets), "weightsBps": list(weights),
                   "promptTokens": int(r.prompt_tokens), "completionTokens": int(r.completion_tokens),
                   "timestamp": int(r.timestamp), "ioHash": "0x" + bytes(r.io_hash).hex()}
            proof = None
            if r.verdict == "ok":
                tree = self._tree(conn, int(r.batch_id), bytes(r.rebuilt_root))
                proof = None if tree is None else _proof_hex(tree, int(r.tree_index))
            out.append({"record": rec, "leaf": "0x" + bytes(r.leaf).hex(), "batchId": int(r.batch_id),
                        "verdict": r.verdict, "proof": proof, "blockNumber": int(r.block_number),
                        "postedAt": int(r.posted_at)})
        return out

    def record(self, conn: Connection, node: str, seq: int) -> dict[str, Any]:
        """One record with its proof (null unless its batch verified `ok`)."""
        node_b = parse_bytes(node, 20, "node")
        rows = conn.execute(sa.select(*self._RECORD_COLS).join(batches, batches.c.batch_id == records.c.batch_id)
                            .where(records.c.node == node_b, records.c.seq == seq)).all()
        if not rows:
            raise NotFound(f"record {seq} of node {node} is not indexed (not posted yet, its batch not verified, "
                           "or its payload unreadable: see /v1/batches)")
        return self._record_json(conn, list(rows))[0]

    def records(self, conn: Connection, *, node: str | None = None, adapter: str | None = None,
                dataset: str | None = None, from_ts: int | None = None, to_ts: int | None = None,
                limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Records matching every filter given, ordered by (timestamp, node, seq)."""
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise QueryError(f"limit must be in [1, {MAX_LIMIT}] and offset >= 0")
        q = sa.select(*self._RECORD_COLS).join(batches, batches.c.batch_id == records.c.batch_id)
        if node is not None:
            q = q.where(records.c.node == parse_bytes(node, 20, "node"))
        if from_ts is not None:
            q = q.where(records.c.timestamp >= from_ts)
        if to_ts is not None:
            q = q.where(records.c.timestamp < to_ts)
        pids: set[int] | None = None
        if adapter is not None:
            pids = set(conn.execute(sa.select(profiles.c.profile_id).where(
                profiles.c.adapter_id == parse_bytes(adapter, 32, "adapter"))).scalars())
        if dataset is not None:
            ds = set(conn.execute(sa.select(profile_datasets.c.profile_id).where(
                profile_datasets.c.dataset_id == parse_bytes(dataset, 32, "dataset"))).scalars())
            pids = ds if pids is None else pids & ds
        order = (records.c.timestamp, records.c.node, records.c.seq)
        if pids is None:
            rows = list(conn.execute(q.order_by(*order).limit(limit).offset(offset)).all())
        else:
            # One ordered index range per profile ((profile_id, timestamp, node, seq) with a LIMIT), merged here:
            # an IN over several profiles would make SQLite and PostgreSQL read every match to sort it.
            per = [list(conn.execute(q.where(records.c.profile_id == pid).order_by(*order).limit(limit + offset))
                        .all()) for pid in sorted(pids)]
            merged = heapq.merge(*per, key=lambda r: (int(r.timestamp), bytes(r.node), int(r.seq)))
            rows = list(itertools.islice(merged, offset, offset + limit))
        return self._record_json(conn, rows)

    # -- batches ------------------------------------------------------------------------------------------

    @staticmethod
    def _batch_json(r: Row[Any]) -> dict[str, Any]:
        return {"batchId": int(r.batch_id), "node": to_checksum_address(bytes(r.node)), "root": _hex(r.root),
                "firstSeq": int(r.first_seq), "count": int(r._mapping["count"]), "daCommitment": _hex(r.da_commitment),
                "postedAt": int(r.posted_at), "blockNumber": int(r.block_number), "blockHash": _hex(r.block_hash),
                "txHash": _hex(r.tx_hash), "verdict": r.verdict or "pending", "detail": r.detail,
                "rebuiltRoot": _hex(r.rebuilt_root)}

    _BATCH_COLS = tuple(c for c in batches.c if c.name != "tree")

    def batch(self, conn: Connection, batch_id: int) -> dict[str, Any]:
        """One batch with its verdict."""
        r = conn.execute(sa.select(*self._BATCH_COLS).where(batches.c.batch_id == batch_id)).first()
        if r is None:
            raise NotFound(f"batch {batch_id} is not indexed (not posted, or not yet confirmed)")
        return self._batch_json(r)

    def batches(self, conn: Connection, *, node: str | None = None, verdict: str | None = None, limit: int = 100,
                offset: int = 0) -> list[dict[str, Any]]:
        """Batches in id order, optionally of one node or one verdict (`pending` = not verified yet)."""
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise QueryError(f"limit must be in [1, {MAX_LIMIT}] and offset >= 0")
        q = sa.select(*self._BATCH_COLS)
        if node is not None:
            q = q.where(batches.c.node == parse_bytes(node, 20, "node"))
        if verdict == "pending":
            q = q.where(batches.c.verdict.is_(None))
        elif verdict is not None:
            q = q.where(batches.c.verdict == verdict)
        q = q.order_by(batches.c.batch_id).limit(limit).offset(offset)
        return [self._batch_json(r) for r in conn.execute(q)]

    # -- usage --------------------------------------------------------------------------------------------

    def usage(self, conn: Connection, by: str, *, epoch_blocks: int = 1000) -> list[dict[str, Any]]:
        """Records and tokens per adapter, dataset (weighted by `weightsBps`), contributor (each batch's dataset
        usage split by the registry's `sharesBps` in effect at the batch's `postedAt`), node or epoch
        (`block_number // epoch_blocks`). Only batches whose verdict is `ok` count."""
        if by not in USAGE_DIMENSIONS:
            raise QueryError(f"usage by {by!r}: choose one of {', '.join(USAGE_DIMENSIONS)}")
        if epoch_blocks < 1:
            raise QueryError("epoch_blocks must be >= 1")
        tokens = records.c.prompt_tokens + records.c.completion_tokens
        ok = sa.and_(batches.c.batch_id == records.c.batch_id, batches.c.verdict == "ok")
        if by in ("dataset", "contributor"):
            weighted = sa.func.sum(tokens * profile_datasets.c.weight_bps)
            src = records.join(batches, ok).join(profile_datasets,
                                                 profile_datasets.c.profile_id == records.c.profile_id)
            if by == "dataset":
                q = (sa.select(profile_datasets.c.dataset_id.label("key"), sa.func.count().label("records"),
                               weighted.label("wtokens")).select_from(src).group_by(profile_datasets.c.dataset_id))
                return sorted(({"dataset": _hex(r.key), "records": int(r.records), "tokens": int(r.wtokens or 0)
                                // 10_000} for r in conn.execute(q)), key=lambda x: -x["tokens"])
            q = (sa.select(profile_datasets.c.dataset_id.label("key"), batches.c.posted_at, weighted.label("wtokens"))
                 .select_from(src).group_by(profile_datasets.c.dataset_id, batches.c.posted_at))
            return self._by_contributor(conn, [(bytes(r.key), int(r.posted_at), int(r.wtokens or 0))
                                               for r in conn.execute(q)])
        key: Any
        if by == "adapter":
            key = profiles.c.adapter_id
            src = records.join(batches, ok).join(profiles, profiles.c.profile_id == records.c.profile_id)
        elif by == "node":
            key, src = records.c.node, records.join(batches, ok)
        else:
            key, src = batches.c.block_number / epoch_blocks, records.join(batches, ok)
        q = (sa.select(key.label("key"), sa.func.count().label("records"),
                       sa.func.sum(records.c.prompt_tokens).label("prompt"),
                       sa.func.sum(records.c.completion_tokens).label("completion"))
             .select_from(src).group_by(key).order_by(key))
        out = []
        for r in conn.execute(q):
            k = (to_checksum_address(bytes(r.key)) if by == "node" else int(r.key) if by == "epoch"
                 else _hex(r.key))
            out.append({by: k, "records": int(r.records), "promptTokens": int(r.prompt or 0),
                        "completionTokens": int(r.completion or 0),
                        "tokens": int(r.prompt or 0) + int(r.completion or 0)})
        return out

    def _by_contributor(self, conn: Connection, rows: list[tuple[bytes, int, int]]) -> list[dict[str, Any]]:
        """rows: (dataset, postedAt, Σ tokens × weightBps) → tokens per contributor (floor of each row's share)."""
        from attribution.indexer.registry import registry_history

        history = registry_history(conn)
        acc: dict[str, int] = {}  # tokens × weightBps × shareBps, floored once at the end
        for dataset_id, posted_at, wtokens in rows:
            entry = None if history is None else history.dataset_at(dataset_id, posted_at, allow_future=True)
            if entry is None:
                acc["unregistered"] = acc.get("unregistered", 0) + wtokens * 10_000
                continue
            for who, share in zip(entry.contributors, entry.shares_bps, strict=True):
                acc[who] = acc.get(who, 0) + wtokens * int(share)
        return sorted(({"contributor": k, "tokens": v // 10**8} for k, v in acc.items()), key=lambda x: -x["tokens"])

    # -- registry -----------------------------------------------------------------------------------------

    def registry_state(self, conn: Connection, at: int | None = None) -> dict[str, Any]:
        """Datasets, base models and adapters as in effect at unix time `at` (default: the last indexed block's
        time), rebuilt with the chain layer's `RegistryHistory` from the stored AssetRegistry events."""
        from attribution.indexer.registry import HistoryNotSynced, registry_history, state_json

        history = registry_history(conn)
        if history is None:
            return {"at": at, "adapters": {}, "datasets": {}, "baseModels": {}}
        t = history.synced_timestamp if at is None else at
        try:
            return state_json(history.at(t))
        except HistoryNotSynced:
            raise QueryError(f"at={at} is after the last indexed block (time {history.synced_timestamp}); ask for "
                             "an earlier time or wait for the indexer") from None

    # -- status -------------------------------------------------------------------------------------------

    def status(self, conn: Connection) -> dict[str, Any]:
        """Cursor, counts and verdict totals."""
        m = {str(k): str(v) for k, v in conn.execute(sa.select(meta.c.key, meta.c.value))}
        verdicts = {str(v or "pending"): int(n) for v, n in conn.execute(
            sa.select(batches.c.verdict, sa.func.count()).group_by(batches.c.verdict))}
        n_records = int(conn.execute(sa.select(sa.func.count()).select_from(records)).scalar() or 0)
        top = conn.execute(sa.select(sa.func.max(blocks.c.number))).scalar()
        return {"chainId": int(m["chain_id"]) if "chain_id" in m else None, "ledger": m.get("ledger"),
                "registry": m.get("registry") or None, "cursor": int(m["cursor"]) if "cursor" in m else None,
                "topBlock": top, "records": n_records, "batches": verdicts}
