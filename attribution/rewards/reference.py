"""The reward rule as DESIGN.md "Rewards" writes it, record by record: the reference anyone can read and recompute.

`compute_rewards` (`rule.py`) is the fast path for millions of records; a property test keeps the two equal on random
epochs. Each step below is one sentence of the rule:

1. Only batches whose verdict is `ok` count (a batch `BatchDisputes` marked unavailable by the epoch's end block
   has the verdict `unavailable`, whatever DA serves).
2. fee = (promptTokens + completionTokens) * pricePerMTokens(adapter, t) // 1e6, with the registry as it stood at
   the record's time t; 0 for the bare base model, an inactive adapter or one not registered at t.
3. owed(node) = the sum of its fees; debit = min(owed, credit); a short node's every fee becomes fee * debit // owed.
4. A fee splits: fee * nodeShareBps // 1e4 to the node, fee * adapterShareBps // 1e4 to the adapter's owner (the
   share parameters in effect at t), the rest to the adapter's datasets by weightsBps (rest * w // 1e4) and on to
   each dataset's contributors by sharesBps (that * s // 1e4), all as registered at t.
5. Whatever the debits took and nobody was paid (every floor's dust, the rest of an adapter without datasets, the
   part of a dataset not registered at t) goes to the treasury. Cumulative amounts carry over from `previous`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from attribution.rewards.inputs import BPS, EpochBatch, RegistryView, RewardsError, SharesSchedule, checksum

__all__ = ["ReferenceRewards", "posted_at", "record_time", "reference_rewards"]

#: Time of record `i` of a batch, at which the registry and the share parameters are read.
TimeOf = Callable[[EpochBatch, int], int]


def posted_at(batch: EpochBatch, i: int) -> int:
    """Every record of a batch at its batch's `postedAt` (what v2 priced by)."""
    t = batch.posted.posted_at
    assert t is not None  # an EpochBatch is never made without it
    return t


def record_time(batch: EpochBatch, i: int) -> int:
    """Record `i` at its own `timestamp` (v3, what `compute_rewards` prices by; the batch header bounds it)."""
    assert batch.decoded is not None
    return int(batch.decoded.timestamps[i])


@dataclass(frozen=True)
class ReferenceRewards:
    """What the rule gives: this epoch's amount per account, each node's debit, the cumulative amounts."""

    amounts: dict[str, int]
    debits: dict[str, int]
    cumulative: dict[str, int]


def reference_rewards(batches: Sequence[EpochBatch], registry: RegistryView, credits: Mapping[str, int],
                      shares: SharesSchedule, treasury: str, previous: Mapping[str, int] | None = None, *,
                      time_of: TimeOf = record_time) -> ReferenceRewards:
    """Apply the rule to one epoch, one record at a time (see the module doc)."""
    if any(int(v) < 0 for v in credits.values()):
        raise RewardsError("a node's credit cannot be negative")
    credit = {checksum(n): int(v) for n, v in credits.items()}
    fees = []  # (node, fee, adapter terms, t) of every record of a counted batch
    for b in batches:
        if b.verdict != "ok" or b.decoded is None:
            continue
        for i in range(b.decoded.count):
            r, t = b.decoded.record(i), time_of(b, i)
            shares.at(t)  # the split parameters must be known at t, even for a free record
            adapter = None if r.adapter_id == bytes(32) else registry.adapter_at(r.adapter_id, t)
            price = adapter.price_per_m_tokens if adapter is not None and adapter.active else 0
            fee = (r.prompt_tokens + r.completion_tokens) * price // 1_000_000
            fees.append((checksum(b.posted.node), fee, adapter, t))
    owed: dict[str, int] = defaultdict(int)
    for node, fee, _, _ in fees:
        owed[node] += fee
    debits = {node: min(o, credit.get(node, 0)) for node, o in owed.items()}
    out: dict[str, int] = defaultdict(int)
    for node, fee, adapter, t in fees:
        if debits[node] < owed[node]:
            fee = fee * debits[node] // owed[node]
        if fee == 0 or adapter is None:
            continue
        node_bps, adapter_bps = shares.at(t)
        to_node, to_owner = fee * node_bps // BPS, fee * adapter_bps // BPS
        out[node] += to_node
        out[checksum(adapter.owner)] += to_owner
        rest = fee - to_node - to_owner
        for dataset_id, weight in zip(adapter.dataset_ids, adapter.weights_bps, strict=True):
            dataset = registry.dataset_at(bytes(dataset_id), t)
            if dataset is None:
                continue  # not registered at t: its part stays with the treasury
            for contributor, share in zip(dataset.contributors, dataset.shares_bps, strict=True):
                out[checksum(contributor)] += rest * weight // BPS * share // BPS
    treasury = checksum(treasury)
    out[treasury] += sum(debits.values()) - sum(out.values())
    amounts = {k: v for k, v in out.items() if v}
    cumulative = {checksum(k): int(v) for k, v in (previous or {}).items()}
    for account, v in amounts.items():
        cumulative[account] = cumulative.get(account, 0) + v
    return ReferenceRewards(amounts, debits, {k: v for k, v in sorted(cumulative.items()) if v > 0})
