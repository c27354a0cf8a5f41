"""The reward rule's fast path (DESIGN.md "Rewards"): verified batches + registry history + node credit ->
cumulative amounts. `reference.reference_rewards` is the same rule written record by record; a property test
(tests/unit/attribution/test_rewards.py) keeps the two equal on random epochs.

A pure function, `compute_rewards`, of
- the epoch's batches, each with its verifier verdict, node, `postedAt` and decoded `LLB2` payload;
- the registry as it was at each record's own `timestamp` (v3: t = the record's time, which the batch header bounds,
  never `postedAt`; `RegistryView`: `attribution.chain.history.RegistryHistory` fits, and so does the in-memory
  `inputs.ScheduledRegistry`);
- each node's fee credit at the epoch's end block, the split parameters in effect at each record's time
  (`SharesSchedule`), the treasury, and the previous cumulative amounts.

The rule, in the order it is applied:
1. Only batches whose verdict is `ok` count; records of any other batch earn nothing and cost nothing (that
   includes `unavailable`: marked so by `BatchDisputes` at the epoch's end block, see `epochs.py`).
2. fee = (promptTokens + completionTokens) * pricePerMTokens(adapter, t) // 1e6; 0 for the bare base model
   (adapterId 0), an inactive adapter, or an adapter not registered at t.
3. owed(node) = sum of its fees; debit = min(owed, credit). When credit is short every fee of that node is scaled
   to fee * debit // owed; what the floors leave of the debit is dust.
4. A (scaled) fee f splits: f * nodeShareBps // 1e4 to the node, f * adapterShareBps // 1e4 to the adapter's owner,
   rest = f - both; dataset i gets rest * weightsBps[i] // 1e4 and contributor j of it that * sharesBps[j] // 1e4.
   An adapter without datasets sends `rest` to the treasury (the owner gains nothing by omitting provenance).
5. Every floor's remainder is dust; dust (and unassigned rests) go to the treasury's cumulative amount.
6. Records whose own datasetIds/weightsBps differ from the registry at t are reported; money follows the registry.

So sum(epoch amounts, treasury included) == sum(debits) exactly, and cumulative amounts only grow.

Its steps: `_gather` (rule 1, and the terms in effect at t), `_fees` (rule 2), `_debit` (rule 3), `_split` (rules 4
and 5). Speed: records are arrays. Fees and splits are computed per record with numpy (int64 when a bound shows no
product can overflow, exact Python ints in object arrays otherwise), grouped by (terms, node) after one sort, and
the contributor split runs on the distinct `rest` values of each terms group with their counts, so the per-record
floor semantics are kept exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attribution.rewards.inputs import (
    BPS,
    BatchSummary,
    EpochBatch,
    EpochRewards,
    Misattribution,
    NodeDebit,
    RegistryView,
    RewardsError,
    SharesSchedule,
    checksum,
)
from attribution.terms import AdapterTerms

__all__ = ["compute_rewards"]

_MTOK = 1_000_000
_ZERO32 = bytes(32)
_I64_SAFE = 2**62  # bound below int64's max, so a sum of two in-bound values cannot wrap either


# --------------------------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Terms:
    """Everything a record's split depends on besides its fee: resolved once per (adapter, terms, shares)."""

    adapter_id: bytes
    owner: str | None
    price: int
    node_bps: int
    adapter_bps: int
    datasets: tuple[tuple[bytes, int, tuple[str, ...], tuple[int, ...]], ...]  # (id, weight, contributors, shares)


def _resolve(registry: RegistryView, adapter_id: bytes, t: int, node_bps: int, adapter_bps: int,
             memo: dict[Any, _Terms]) -> tuple[_Terms, AdapterTerms | None]:
    if adapter_id == _ZERO32:
        return _Terms(adapter_id, None, 0, node_bps, adapter_bps, ()), None
    a = registry.adapter_at(adapter_id, t)
    if a is None or not a.active or a.price_per_m_tokens == 0:
        return _Terms(adapter_id, None, 0, node_bps, adapter_bps, ()), a
    ds = tuple(registry.dataset_at(bytes(d_id), t) for d_id in a.dataset_ids)
    key = (adapter_id, a, ds, node_bps, adapter_bps)  # states are frozen dataclasses: equal terms, one _Terms
    hit = memo.get(key)
    if hit is not None:
        return hit, a
    datasets = []
    for d_id, w, d in zip(a.dataset_ids, a.weights_bps, ds, strict=True):
        contributors = tuple(checksum(c) for c in d.contributors) if d is not None else ()
        shares = tuple(int(s) for s in d.shares_bps) if d is not None else ()
        datasets.append((bytes(d_id), int(w), contributors, shares))
    memo[key] = terms = _Terms(adapter_id, checksum(a.owner), int(a.price_per_m_tokens), node_bps, adapter_bps,
                               tuple(datasets))
    return terms, a


def _as(arr: np.ndarray, exact: bool) -> np.ndarray:
    return arr.astype(object) if exact else arr.astype(np.int64)


def compute_rewards(batches: Sequence[EpochBatch], registry: RegistryView, credits: Mapping[str, int],
                    shares: SharesSchedule, treasury: str, previous: Mapping[str, int] | None = None
                    ) -> EpochRewards:
    """Apply the reward rule to one epoch's batches: the fast path of `reference.reference_rewards` (same result,
    see the module docstring). Pure; integer arithmetic only.

    `credits` maps node -> fee credit at proposal (a node missing from it has credit 0). `previous` maps account ->
    cumulative amount of the last claimable (not vetoed) root.
    """
    treasury = checksum(treasury)
    credit_of = {checksum(k): int(v) for k, v in credits.items()}
    if any(v < 0 for v in credit_of.values()):
        raise RewardsError("a node's credit cannot be negative")
    g = _gather(batches, registry, shares)  # rule 1: counted batches' records as arrays, terms resolved at t
    fee = _fees(g, credit_of)  # rule 2
    runs = _Runs.of(g, fee)
    nodes, dust = _debit(g, runs, credit_of)  # rule 3 (scales runs.fee_s of short nodes)
    pay = _Payouts()
    unassigned, split_dust = _split(g, runs, pay)  # rules 4 and 5
    dust += split_dust
    pay.pay(treasury, "treasury", dust + unassigned)
    cumulative = {checksum(k): int(v) for k, v in (previous or {}).items()}
    for acct, v in pay.amounts.items():
        cumulative[acct] = cumulative.get(acct, 0) + v
    cumulative = {k: v for k, v in sorted(cumulative.items()) if v > 0}
    return EpochRewards(dict(pay.amounts), cumulative, nodes, g.summaries, g.misattributed, treasury, dust,
                        unassigned, {k: dict(v) for k, v in pay.roles.items()},
                        {k: dict(v) for k, v in pay.adapters.items()}, dict(pay.datasets), g.n)


@dataclass
class _Gathered:
    """The counted records as arrays: each record's terms index, node index and tokens; the terms and nodes."""

    terms: list[_Terms]
    node_names: list[str]
    term_of: np.ndarray
    node_of: np.ndarray
    tokens: np.ndarray
    batch_sizes: list[int]  # records of each counted batch, in order
    summaries: list[BatchSummary]
    misattributed: list[Misattribution]
    max_tokens: int
    exact: bool = False  # set by `_fees`: object arrays of Python ints when int64 could overflow

    @property
    def n(self) -> int:
        """Number of counted records."""
        return len(self.tokens)

    def arr(self, values: Sequence[int]) -> np.ndarray:
        """An array in this epoch's integer kind."""
        return np.array(values, dtype=object if self.exact else np.int64)


def _gather(batches: Sequence[EpochBatch], registry: RegistryView, shares: SharesSchedule) -> _Gathered:
    """Rule 1 and the terms of rule 2: the records of `ok` batches, with the terms in effect at their time."""
    terms: list[_Terms] = []
    memo: dict[Any, _Terms] = {}
    term_index: dict[_Terms, int] = {}
    node_names: list[str] = []
    node_index: dict[str, int] = {}
    resolve_cache: dict[tuple[bytes, int, int, int], tuple[int, AdapterTerms | None]] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    summaries: list[BatchSummary] = []
    misattributed: list[Misattribution] = []
    max_tokens = 0
    for b in batches:
        node = checksum(b.posted.node)
        dec = b.decoded
        if b.verdict != "ok" or dec is None:
            summaries.append(BatchSummary(b.posted.batch_id, node, str(b.verdict), False,
                                          dec.count if dec is not None else b.posted.count, 0))
            continue
        n_idx = node_index.setdefault(node, len(node_names))
        if n_idx == len(node_names):
            node_names.append(node)
        pidx = np.asarray(dec.profile_idx, dtype=np.int64)
        ts = np.asarray(dec.timestamps, dtype=np.int64)
        # Every record is priced and split by the registry and shares in effect at its own timestamp (v3; the
        # batch header bounds it): one resolution per distinct (profile, timestamp) of the batch.
        pairs, inverse = (np.unique(np.stack([pidx, ts], axis=1), axis=0, return_inverse=True) if len(pidx)
                          else (np.zeros((0, 2), np.int64), np.zeros(0, np.int64)))
        u2t = np.empty(len(pairs), dtype=np.int64)
        found: dict[tuple[Any, ...], list[np.ndarray]] = {}
        for u, (i, t) in enumerate(pairs.tolist()):
            p = dec.profiles[i]
            node_bps, adapter_bps = shares.at(t)
            key = (p.adapter_id, t, node_bps, adapter_bps)
            hit = resolve_cache.get(key)
            if hit is None:
                tm, state = _resolve(registry, p.adapter_id, t, node_bps, adapter_bps, memo)
                ti = term_index.setdefault(tm, len(terms))
                if ti == len(terms):
                    terms.append(tm)
                hit = (ti, state)
                resolve_cache[key] = hit
            u2t[u] = hit[0]
            m = _misattribution(p.adapter_id, p.dataset_ids, p.weights_bps, hit[1])
            if m is not None:
                found.setdefault((p.adapter_id, *m), []).append(np.flatnonzero(inverse == u))
        for (adapter_id, reason, reported, registry_terms), where in found.items():
            seqs = tuple((dec.first_seq + np.sort(np.concatenate(where))).tolist())
            misattributed.append(Misattribution(b.posted.batch_id, node, adapter_id, reason, seqs, reported,
                                                registry_terms))
        tokens = np.asarray(dec.prompt_tokens, dtype=np.int64) + np.asarray(dec.completion_tokens, dtype=np.int64)
        if len(tokens):
            max_tokens = max(max_tokens, int(tokens.max()))
        parts.append((u2t[inverse.reshape(-1)] if len(pidx) else np.zeros(0, np.int64),
                      np.full(len(pidx), n_idx, dtype=np.int64), tokens))
        summaries.append(BatchSummary(b.posted.batch_id, node, "ok", True, int(dec.count), 0))  # fees filled by _fees

    def cat(k: int) -> np.ndarray:
        return np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64)

    return _Gathered(terms, node_names, cat(0), cat(1), cat(2), [len(p[2]) for p in parts], summaries,
                     misattributed, max_tokens)


def _fees(g: _Gathered, credit_of: Mapping[str, int]) -> np.ndarray:
    """Rule 2: each record's fee. Picks int64 when a bound shows no later product can overflow, else exact ints."""
    prices = [t.price for t in g.terms]
    max_price = max(prices, default=0)
    max_fee = g.max_tokens * max_price // _MTOK
    max_credit = max(credit_of.values(), default=0)
    n = g.n
    # One bound for every value below: each price (it goes into the array itself, even when no record has tokens),
    # tokens*price, fee*debit (debit <= owed <= n*max_fee), fee*bps, sums.
    bound = max(max_price, g.max_tokens * max_price, max_fee * min(max_credit, max(n, 1) * max_fee),
                max_fee * BPS, max(n, 1) * max_fee * BPS)
    g.exact = bound >= _I64_SAFE
    price_arr = g.arr(prices if prices else [0])
    fee = _as(g.tokens, g.exact) * price_arr[g.term_of] // _MTOK if n else _as(g.tokens, g.exact)
    lo = 0
    sizes = iter(g.batch_sizes)
    for j, s in enumerate(g.summaries):  # batch fee totals for the report (before scaling)
        if s.counted:
            hi = lo + next(sizes)
            g.summaries[j] = BatchSummary(s.batch_id, s.node, s.verdict, True, s.records, int(fee[lo:hi].sum()))
            lo = hi
    return fee


@dataclass
class _Runs:
    """The records sorted once by (terms, node): every (terms, node) pair is a contiguous run starting at `starts`."""

    order: np.ndarray
    fee_s: np.ndarray
    node_s: np.ndarray
    term_s: np.ndarray
    starts: np.ndarray
    run_term: np.ndarray
    run_node: np.ndarray
    run_len: np.ndarray

    @classmethod
    def of(cls, g: _Gathered, fee: np.ndarray) -> _Runs:
        """Sort `g`'s records by (terms, node)."""
        n = g.n
        run_key = g.term_of * max(len(g.node_names), 1) + g.node_of
        order = np.argsort(run_key, kind="stable")
        key_s = run_key[order]
        starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]]) if n else np.zeros(0, np.int64)
        node_s, term_s = g.node_of[order], g.term_of[order]
        return cls(order, fee[order], node_s, term_s, starts, term_s[starts], node_s[starts],
                   np.diff(np.r_[starts, n]) if n else np.zeros(0, np.int64))

    def per_node(self, values: np.ndarray, n_nodes: int) -> list[int]:
        """Sum of per-record `values` (in run order) for each node."""
        out = [0] * n_nodes
        if len(self.starts):
            for nd, v in zip(self.run_node.tolist(), np.add.reduceat(values, self.starts).tolist(), strict=True):
                out[nd] += int(v)
        return out


def _debit(g: _Gathered, runs: _Runs, credit_of: Mapping[str, int]) -> tuple[dict[str, NodeDebit], int]:
    """Rule 3: owed and debit per node; a short node's fees scaled to fee * debit // owed (in `runs.fee_s`).
    Returns the nodes and the dust the scaling floors leave."""
    owed = runs.per_node(runs.fee_s, len(g.node_names))
    counts = [0] * len(g.node_names)
    for nd, c in zip(runs.run_node.tolist(), runs.run_len.tolist(), strict=True):
        counts[nd] += int(c)
    nodes = {name: NodeDebit(name, counts[i], owed[i], credit_of.get(name, 0), min(owed[i], credit_of.get(name, 0)))
             for i, name in enumerate(g.node_names)}
    short = [i for i, name in enumerate(g.node_names) if nodes[name].short]
    if not short:
        return nodes, 0
    num = g.arr([nodes[nm].debit if nodes[nm].short else 1 for nm in g.node_names])
    den = g.arr([nodes[nm].owed if nodes[nm].short else 1 for nm in g.node_names])
    runs.fee_s = runs.fee_s * num[runs.node_s] // den[runs.node_s]
    scaled = runs.per_node(runs.fee_s, len(g.node_names))
    return nodes, sum(nodes[g.node_names[i]].debit - scaled[i] for i in short)


@dataclass
class _Payouts:
    """What the split pays: per account (and by role), and per adapter and dataset for the report."""

    amounts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    roles: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    adapters: dict[bytes, dict[str, int]] = field(default_factory=dict)
    datasets: dict[bytes, int] = field(default_factory=lambda: defaultdict(int))

    def pay(self, account: str, role: str, amount: int) -> None:
        """Credit `amount` to `account` as `role`."""
        if amount:
            self.amounts[account] += amount
            self.roles[account][role] += amount


def _split(g: _Gathered, runs: _Runs, pay: _Payouts) -> tuple[int, int]:
    """Rules 4 and 5: split every (scaled) fee, run by run; the contributor split runs on the distinct `rest` values
    of each terms group with their counts, which keeps the per-record floors. Returns (unassigned, dust)."""
    n, starts, fee_s = g.n, runs.starts, runs.fee_s
    if not n:
        return 0, 0
    unassigned = dust = 0
    node_part = fee_s * g.arr([t.node_bps for t in g.terms])[runs.term_s] // BPS
    adapter_part = fee_s * g.arr([t.adapter_bps for t in g.terms])[runs.term_s] // BPS
    rest = fee_s - node_part - adapter_part
    run_node_part = np.add.reduceat(node_part, starts).tolist()
    run_adapter_part = np.add.reduceat(adapter_part, starts).tolist()
    run_fee = np.add.reduceat(fee_s, starts).tolist()
    run_rest = np.add.reduceat(rest, starts).tolist()
    run_tokens = np.add.reduceat(g.tokens[runs.order], starts).tolist()
    t_bounds = np.flatnonzero(np.r_[True, runs.run_term[1:] != runs.run_term[:-1]]).tolist() + [len(starts)]
    for a, z in zip(t_bounds[:-1], t_bounds[1:], strict=True):  # one terms group: runs a..z-1
        tm = g.terms[int(runs.run_term[a])]
        assigned = 0
        for r in range(a, z):
            pay.pay(g.node_names[int(runs.run_node[r])], "node", int(run_node_part[r]))
            assigned += int(run_node_part[r])
        f_sum, adapter_sum, rest_sum = sum(run_fee[a:z]), sum(run_adapter_part[a:z]), sum(run_rest[a:z])
        rep = pay.adapters.setdefault(tm.adapter_id, defaultdict(int))
        rep["records"] += int(sum(runs.run_len[a:z].tolist()))
        rep["tokens"] += int(sum(run_tokens[a:z]))
        rep["fees"] += f_sum
        if tm.owner is not None:  # else the price is 0: every part is 0
            pay.pay(tm.owner, "adapter", adapter_sum)
            rep["owner"] += adapter_sum
            assigned += adapter_sum
        if not tm.datasets:
            unassigned += rest_sum
            rep["unassigned"] += rest_sum
            assigned += rest_sum
        else:
            lo, hi = int(starts[a]), (int(starts[z]) if z < len(starts) else n)
            vals, cnt = np.unique(rest[lo:hi], return_counts=True)
            if g.exact:
                cnt = cnt.astype(object)
            for d_id, w, contributors, d_shares in tm.datasets:
                d_amt = vals * w // BPS
                if not contributors:  # a dataset the registry did not have at t
                    lost = int((d_amt * cnt).sum())
                    unassigned += lost
                    rep["unassigned"] += lost
                    assigned += lost
                    continue
                per = (d_amt[:, None] * g.arr(d_shares)[None, :] // BPS * cnt[:, None]).sum(axis=0).tolist()
                got = 0
                for c, v in zip(contributors, per, strict=True):
                    pay.pay(c, "dataset", int(v))
                    got += int(v)
                pay.datasets[d_id] += got
                rep["datasets"] += got
                assigned += got
        dust += f_sum - assigned
    return unassigned, dust


def _misattribution(adapter_id: bytes, ids: tuple[bytes, ...], weights: tuple[int, ...],
                    state: AdapterTerms | None) -> tuple[str, Any, Any] | None:
    """(reason, reported provenance, registry provenance) when a profile's provenance differs from the registry
    at a record's time, else None."""
    reported = tuple(zip(ids, weights, strict=True))
    registry: tuple[tuple[bytes, int], ...] | None
    if adapter_id == _ZERO32:
        if not reported:
            return None
        return "the bare base model has no datasets", reported, ()
    if state is None:
        return "adapter not registered at the record's time", reported, None
    registry = tuple((bytes(d), int(w)) for d, w in zip(state.dataset_ids, state.weights_bps, strict=True))
    if registry == reported:
        return None
    return "provenance differs from the registry at the record's time", reported, registry
