"""Database reads for the explorer's pages, on SQLite and PostgreSQL alike (SQLAlchemy Core only): a batch's
records, a node's records per hour, an asset's registry history and its usage and fees per rewards epoch, and an
account's usage per rewards epoch."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from attribution.chain.history import RegistryHistory
from attribution.hashing import to_checksum_address
from attribution.indexer.explorer.chainview import Epoch
from attribution.indexer.queries import NotFound, parse_bytes
from attribution.indexer.schema import batches, profile_datasets, profiles, records, registry_events

__all__ = ["batch_records", "records_per_hour", "asset_history", "epoch_of", "usage_per_epoch", "node_record_count",
           "account_usage_per_epoch", "adapters_using", "parse_node"]

MAX_BATCH_ROWS = 1000
HOURS_SHOWN = 72


def _hex(b: Any) -> str:
    return "0x" + bytes(b).hex()


def batch_records(conn: Connection, batch_id: int, limit: int = MAX_BATCH_ROWS) -> list[dict[str, Any]]:
    """The first `limit` records of a batch, by seq (no proofs: the record page has them)."""
    q = (sa.select(records.c.seq, records.c.prompt_tokens, records.c.completion_tokens, records.c.timestamp,
                   records.c.leaf, profiles.c.adapter_id)
         .join(profiles, profiles.c.profile_id == records.c.profile_id)
         .where(records.c.batch_id == batch_id).order_by(records.c.seq).limit(limit))
    return [{"seq": int(r.seq), "promptTokens": int(r.prompt_tokens), "completionTokens": int(r.completion_tokens),
             "timestamp": int(r.timestamp), "leaf": _hex(r.leaf), "adapterId": _hex(r.adapter_id)}
            for r in conn.execute(q)]


def node_record_count(conn: Connection, node: bytes) -> int:
    """Records of `node` in the index."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(records).where(records.c.node == node)).scalar()
               or 0)


def records_per_hour(conn: Connection, node: bytes, hours: int = HOURS_SHOWN) -> list[dict[str, int]]:
    """Records of `node` per UTC hour of their timestamp, for the last `hours` hours that have any, every hour
    between them filled (a gap shows as a zero bar, not as a missing one)."""
    hour = (records.c.timestamp // 3600).label("hour")  # floor division on both (`/` is true division)
    q = (sa.select(hour, sa.func.count().label("n")).where(records.c.node == node).group_by(hour)
         .order_by(hour.desc()).limit(hours))
    got = {int(r.hour): int(r.n) for r in conn.execute(q)}
    if not got:
        return []
    last = max(got)
    first = max(min(got), last - hours + 1)
    return [{"hour": h, "records": got.get(h, 0)} for h in range(first, last + 1)]


def asset_history(conn: Connection, key: str, asset_id: bytes) -> list[dict[str, Any]]:
    """Every AssetRegistry event about one asset (`key` = "adapterId" or "datasetId"), oldest first, with the
    time its terms take effect (`effectiveAt`; the block time when the event has none)."""
    want = _hex(asset_id)
    out = []
    for r in conn.execute(sa.select(registry_events).order_by(registry_events.c.block_number,
                                                              registry_events.c.log_index)):
        args = json.loads(r.args)
        if str(args.get(key, "")).lower() != want:
            continue
        terms = {k: v for k, v in args.items() if k not in (key, "effectiveAt")}
        out.append({"event": r.event, "blockNumber": int(r.block_number),
                    "effectiveAt": int(args.get("effectiveAt", r.block_timestamp)), "terms": terms})
    return out


def epoch_of(epochs: Sequence[Epoch]) -> Callable[[int], str]:
    """block number -> the rewards epoch whose block range holds it ("open" when none does yet)."""
    ranges = [(e.from_block, e.to_block, str(e.epoch)) for e in epochs if e.payload is not None and e.state != "vetoed"]

    def find(block: int) -> str:
        return next((name for lo, hi, name in ranges if lo <= block <= hi), "open")
    return find


def _order(labels: set[str]) -> list[str]:
    return sorted(labels, key=lambda x: (x == "open", int(x) if x.isdigit() else 0))


def usage_per_epoch(conn: Connection, history: RegistryHistory | None, epochs: Sequence[Epoch], *,
                    adapter: bytes | None = None, dataset: bytes | None = None,
                    dataset_share_bps: int = 10_000) -> list[dict[str, Any]]:
    """Records, tokens and fees per rewards epoch of an adapter's records, or of a dataset's (tokens and fees
    weighted by each profile's `weightBps`, fees times `dataset_share_bps`). Fees use the registry's price in effect
    at each record's own timestamp, floored per (block, timestamp) group, before any shortfall scaling."""
    if (adapter is None) == (dataset is None):
        raise NotFound("usage per epoch needs exactly one of adapter or dataset")
    tokens = sa.func.sum(records.c.prompt_tokens + records.c.completion_tokens).label("tokens")
    ok = sa.and_(batches.c.batch_id == records.c.batch_id, batches.c.verdict == "ok")
    cols = [batches.c.block_number, records.c.timestamp, profiles.c.adapter_id, sa.func.count().label("n"), tokens]
    src = records.join(batches, ok).join(profiles, profiles.c.profile_id == records.c.profile_id)
    if dataset is not None:
        src = src.join(profile_datasets, profile_datasets.c.profile_id == records.c.profile_id)
        cols.append(profile_datasets.c.weight_bps)
        where = profile_datasets.c.dataset_id == dataset
        group = [*cols[:3], profile_datasets.c.weight_bps]
    else:
        where = profiles.c.adapter_id == adapter
        group = cols[:3]
    find = epoch_of(epochs)
    acc: dict[str, list[int]] = {}
    for r in conn.execute(sa.select(*cols).select_from(src).where(where).group_by(*group)):
        w = int(r.weight_bps) if dataset is not None else 10_000
        terms = None if history is None else history.adapter_at(bytes(r.adapter_id), int(r.timestamp),
                                                                  allow_future=True)
        fee = 0 if terms is None else terms.fee(int(r.tokens))
        row = acc.setdefault(find(int(r.block_number)), [0, 0, 0])
        row[0] += int(r.n)
        row[1] += int(r.tokens) * w // 10_000
        row[2] += fee * w * dataset_share_bps // 10_000 // 10_000
    for e in epochs:  # an epoch with no usage still shows, as a zero
        if e.payload is not None and e.state != "vetoed":
            acc.setdefault(str(e.epoch), [0, 0, 0])
    return [{"epoch": k, "records": acc[k][0], "tokens": acc[k][1], "earnings": str(acc[k][2])}
            for k in _order(set(acc))]


def account_usage_per_epoch(conn: Connection, history: RegistryHistory | None, epochs: Sequence[Epoch],
                            account: str) -> list[dict[str, Any]]:
    """Records and tokens (prompt + completion) per rewards epoch of the verified records whose fee paid `account`
    something under the reward rule: served by it as node, of an adapter it owned at the record's time, or naming a
    dataset it was a contributor of at that time. A record counts once, in full, however many of these it meets."""
    who = account.lower()
    named: dict[int, list[bytes]] = {}
    for p in conn.execute(sa.select(profile_datasets.c.profile_id, profile_datasets.c.dataset_id)):
        named.setdefault(int(p.profile_id), []).append(bytes(p.dataset_id))
    tokens = sa.func.sum(records.c.prompt_tokens + records.c.completion_tokens).label("tokens")
    ok = sa.and_(batches.c.batch_id == records.c.batch_id, batches.c.verdict == "ok")
    group = [batches.c.block_number, records.c.timestamp, records.c.node, records.c.profile_id, profiles.c.adapter_id]
    src = records.join(batches, ok).join(profiles, profiles.c.profile_id == records.c.profile_id)

    def paid(r: Any) -> bool:
        t = int(r.timestamp)
        if _hex(r.node) == who:
            return True
        if history is None:
            return False
        a = history.adapter_at(bytes(r.adapter_id), t, allow_future=True)
        if a is not None and a.owner.lower() == who:
            return True
        return any(d is not None and who in (c.lower() for c in d.contributors)
                   for d in (history.dataset_at(ds, t, allow_future=True) for ds in named.get(int(r.profile_id), [])))
    find = epoch_of(epochs)
    acc: dict[str, list[int]] = {}
    for r in conn.execute(sa.select(*group, sa.func.count().label("n"), tokens).select_from(src).group_by(*group)):
        if paid(r):
            row = acc.setdefault(find(int(r.block_number)), [0, 0])
            row[0] += int(r.n)
            row[1] += int(r.tokens)
    for e in epochs:  # an epoch with no usage still shows, as a zero
        if e.payload is not None and e.state != "vetoed":
            acc.setdefault(str(e.epoch), [0, 0])
    return [{"epoch": k, "records": acc[k][0], "tokens": acc[k][1]} for k in _order(set(acc))]


def adapters_using(conn: Connection, dataset: bytes) -> list[str]:
    """Adapter ids whose served records named `dataset`."""
    q = (sa.select(profiles.c.adapter_id).join(profile_datasets, profile_datasets.c.profile_id == profiles.c.profile_id)
         .where(profile_datasets.c.dataset_id == dataset).distinct())
    return sorted(_hex(r.adapter_id) for r in conn.execute(q))


def parse_node(node: str) -> tuple[bytes, str]:
    """(raw bytes, checksum address) of a node parameter."""
    raw = parse_bytes(node, 20, "node")
    return raw, to_checksum_address(raw)
