"""The reward rule (DESIGN.md "Rewards"): verified batches + registry history + node credit -> cumulative amounts.

A pure function, `compute_rewards`, of
- the epoch's batches, each with its verifier verdict, node, `postedAt` and decoded `LLB2` payload;
- the registry as it was at each record's own `timestamp` (v3: t = the record's time, which the batch header bounds,
  never `postedAt`; `RegistryView`: `attribution.chain.history.RegistryHistory` fits, and so does the in-memory
  `ScheduledRegistry` below);
- each node's fee credit at the epoch's end block, the split parameters in effect at each record's time
  (`SharesSchedule`), the treasury, and the previous cumulative amounts.

The rule, in the order it is applied:
1. Only batches whose verdict is `ok` count; records of any other batch earn nothing and cost nothing.
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

Speed: records are arrays. Fees and splits are computed per record with numpy (int64 when a bound shows no
product can overflow, exact Python ints in object arrays otherwise), grouped by (terms, node) after one sort, and
the contributor split runs on the distinct `rest` values of each terms group with their counts, so the per-record
floor semantics are kept exactly.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from attribution.errors import AttributionError
from attribution.hashing import to_checksum_address
from attribution.records.payload import DecodedBatch
from attribution.terms import AdapterTerms, DatasetTerms

__all__ = [
    "BPS",
    "RewardsError",
    "RegistryView",
    "AdapterTerms",
    "DatasetTerms",
    "ScheduledRegistry",
    "SharesSchedule",
    "EpochBatch",
    "NodeDebit",
    "Misattribution",
    "BatchSummary",
    "EpochRewards",
    "compute_rewards",
    "checksum",
]

BPS = 10_000
_MTOK = 1_000_000
_ZERO32 = bytes(32)
_I64_SAFE = 2**62  # bound below int64's max, so a sum of two in-bound values cannot wrap either


class RewardsError(AttributionError):
    """The reward inputs are inconsistent (a share schedule that does not cover a batch, bad credit, bad shares)."""


def checksum(address: str | bytes) -> str:
    """EIP-55 form of a 20-byte address given as bytes or hex (any case); `RewardsError` for anything else."""
    try:
        return to_checksum_address(address)
    except ValueError as e:
        raise RewardsError(f"{e}: {address!r:.80}") from e


# --------------------------------------------------------------------------------------------------------------
# Registry at time t
# --------------------------------------------------------------------------------------------------------------

class RegistryView(Protocol):
    """The registry state in effect at a time (`RegistryHistory` implements it)."""

    def adapter_at(self, adapter_id: bytes, t: int) -> AdapterTerms | None:
        """The adapter's terms in effect at `t`, None if it was not registered by then."""
        ...

    def dataset_at(self, dataset_id: bytes, t: int) -> DatasetTerms | None:
        """The dataset's contributors and shares in effect at `t`, None if not registered by then."""
        ...


class ScheduledRegistry:
    """An in-memory registry history: terms per asset, each in effect from a time (tests, benches, offline runs)."""

    def __init__(self) -> None:
        self._adapters: dict[bytes, tuple[list[int], list[AdapterTerms]]] = {}
        self._datasets: dict[bytes, tuple[list[int], list[DatasetTerms]]] = {}

    @staticmethod
    def _put(table: dict[bytes, Any], key: bytes, effective_at: int, value: Any) -> None:
        times, values = table.setdefault(bytes(key), ([], []))
        i = bisect.bisect_right(times, effective_at)
        times.insert(i, effective_at)
        values.insert(i, value)

    def set_adapter(self, adapter_id: bytes, effective_at: int, terms: AdapterTerms) -> None:
        """Put `terms` in effect for `adapter_id` from `effective_at`."""
        self._put(self._adapters, adapter_id, effective_at, terms)

    def set_dataset(self, dataset_id: bytes, effective_at: int, terms: DatasetTerms) -> None:
        """Put `terms` in effect for `dataset_id` from `effective_at`."""
        self._put(self._datasets, dataset_id, effective_at, terms)

    @staticmethod
    def _at(table: dict[bytes, Any], key: bytes, t: int) -> Any:
        entry = table.get(bytes(key))
        if entry is None:
            return None
        i = bisect.bisect_right(entry[0], t)
        return entry[1][i - 1] if i else None

    def adapter_at(self, adapter_id: bytes, t: int) -> AdapterTerms | None:
        """The adapter's terms in effect at `t`."""
        return self._at(self._adapters, adapter_id, t)  # type: ignore[no-any-return]

    def dataset_at(self, dataset_id: bytes, t: int) -> DatasetTerms | None:
        """The dataset's terms in effect at `t`."""
        return self._at(self._datasets, dataset_id, t)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SharesSchedule:
    """The RewardDistributor's split parameters over time: `(effectiveAt, nodeShareBps, adapterShareBps)` entries.

    `SharesSchedule.fixed(2000, 3000)` is one setting in effect since time 0.
    """

    entries: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        entries = tuple(sorted(((int(t), int(n), int(a)) for t, n, a in self.entries), key=lambda e: e[0]))
        for t, n, a in entries:
            if n < 0 or a < 0 or n + a > BPS:
                raise RewardsError(f"shares at {t}: nodeShareBps {n} + adapterShareBps {a} must be in [0, {BPS}]")
        object.__setattr__(self, "entries", entries)

    @classmethod
    def fixed(cls, node_share_bps: int, adapter_share_bps: int) -> SharesSchedule:
        """One setting, in effect from time 0."""
        return cls(((0, node_share_bps, adapter_share_bps),))

    def at(self, t: int) -> tuple[int, int]:
        """(nodeShareBps, adapterShareBps) in effect at `t`."""
        i = bisect.bisect_right([e[0] for e in self.entries], t)
        if not i:
            raise RewardsError(f"no share parameters in effect at {t}; the schedule starts at "
                               f"{self.entries[0][0] if self.entries else 'never'}")
        return self.entries[i - 1][1], self.entries[i - 1][2]

    def to_json(self) -> list[list[int]]:
        """JSON view."""
        return [list(e) for e in self.entries]


# --------------------------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EpochBatch:
    """One posted batch of the epoch: its verdict (`attribution.verify.Verdict` value) and decoded payload."""

    batch_id: int
    node: str
    posted_at: int
    verdict: str
    decoded: DecodedBatch | None = field(default=None, repr=False, compare=False)
    first_seq: int = 0
    count: int = 0


@dataclass
class NodeDebit:
    """What one node owes for the epoch and what is debited from its credit."""

    node: str
    records: int
    owed: int
    credit: int
    debit: int

    @property
    def short(self) -> bool:
        """True when the credit did not cover the fees (they were scaled by debit/owed)."""
        return self.debit < self.owed

    def to_json(self) -> dict[str, Any]:
        """JSON view (amounts as decimal strings)."""
        return {"node": self.node, "records": self.records, "owed": str(self.owed), "credit": str(self.credit),
                "debit": str(self.debit)}


@dataclass(frozen=True)
class Misattribution:
    """Records of one batch profile whose provenance differs from the registry at `postedAt` (or that name an
    adapter the registry did not have then). They are paid by the registry (or not at all, when unregistered)."""

    batch_id: int
    node: str
    adapter_id: bytes
    reason: str
    seqs: tuple[int, ...]
    reported: tuple[tuple[bytes, int], ...]
    registry: tuple[tuple[bytes, int], ...] | None

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        def prov(p: tuple[tuple[bytes, int], ...] | None) -> Any:
            return None if p is None else [["0x" + d.hex(), w] for d, w in p]
        return {"batchId": self.batch_id, "node": self.node, "adapterId": "0x" + self.adapter_id.hex(),
                "reason": self.reason, "records": len(self.seqs), "seqs": list(self.seqs),
                "reported": prov(self.reported), "registry": prov(self.registry)}


@dataclass(frozen=True)
class BatchSummary:
    """One batch of the epoch: counted or not, and its records' fees before scaling."""

    batch_id: int
    node: str
    verdict: str
    counted: bool
    records: int
    fees: int

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"batchId": self.batch_id, "node": self.node, "verdict": self.verdict, "counted": self.counted,
                "records": self.records, "fees": str(self.fees)}


@dataclass
class EpochRewards:
    """The result of the rule for one epoch.

    `amounts` are this epoch's payouts per account (treasury included); `cumulative` = previous + amounts for every
    account with a non-zero cumulative amount; `total` = sum(cumulative). `roles[account]` splits an account's
    epoch amount by why it was paid (`node`, `adapter`, `dataset`, `treasury`). `adapters`/`datasets` hold
    per-asset totals for the report.
    """

    amounts: dict[str, int]
    cumulative: dict[str, int]
    nodes: dict[str, NodeDebit]
    batches: list[BatchSummary]
    misattributed: list[Misattribution]
    treasury: str
    dust: int
    unassigned: int
    roles: dict[str, dict[str, int]]
    adapters: dict[bytes, dict[str, int]]
    datasets: dict[bytes, int]
    records: int

    @property
    def debits(self) -> int:
        """Sum of the debits taken from node credit this epoch."""
        return sum(n.debit for n in self.nodes.values())

    @property
    def total(self) -> int:
        """Sum of all cumulative amounts (what `proposeRoot` takes as `total`)."""
        return sum(self.cumulative.values())

    @property
    def paid(self) -> int:
        """Sum of this epoch's amounts to accounts other than as treasury (dust and unassigned excluded)."""
        return sum(v for r in self.roles.values() for k, v in r.items() if k != "treasury")


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
    """Apply the reward rule to one epoch's batches (see the module docstring). Pure; integer arithmetic only.

    `credits` maps node -> fee credit at proposal (a node missing from it has credit 0). `previous` maps account ->
    cumulative amount of the last claimable (not vetoed) root.
    """
    treasury = checksum(treasury)
    previous = {checksum(k): int(v) for k, v in (previous or {}).items()}
    credit_of = {checksum(k): int(v) for k, v in credits.items()}
    if any(v < 0 for v in credit_of.values()):
        raise RewardsError("a node's credit cannot be negative")

    terms: list[_Terms] = []
    memo: dict[Any, _Terms] = {}
    term_index: dict[_Terms, int] = {}
    node_names: list[str] = []
    node_index: dict[str, int] = {}
    resolve_cache: dict[tuple[bytes, int, int, int], tuple[int, AdapterTerms | None]] = {}
    parts_term: list[np.ndarray] = []
    parts_node: list[np.ndarray] = []
    parts_tokens: list[np.ndarray] = []
    summaries: list[BatchSummary] = []
    misattributed: list[Misattribution] = []
    max_tokens = 0

    for b in batches:
        node = checksum(b.node)
        counted = b.verdict == "ok" and b.decoded is not None
        if not counted:
            summaries.append(BatchSummary(b.batch_id, node, str(b.verdict), False,
                                          b.decoded.count if b.decoded is not None else b.count, 0))
            continue
        dec = b.decoded
        assert dec is not None
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
            misattributed.append(Misattribution(b.batch_id, node, adapter_id, reason, seqs, reported, registry_terms))
        tokens = np.asarray(dec.prompt_tokens, dtype=np.int64) + np.asarray(dec.completion_tokens, dtype=np.int64)
        if len(tokens):
            max_tokens = max(max_tokens, int(tokens.max()))
        parts_term.append(u2t[inverse.reshape(-1)] if len(pidx) else np.zeros(0, np.int64))
        parts_node.append(np.full(len(pidx), n_idx, dtype=np.int64))
        parts_tokens.append(tokens)
        summaries.append(BatchSummary(b.batch_id, node, "ok", True, int(dec.count), 0))  # fees filled below

    n_nodes = len(node_names)
    term_of = np.concatenate(parts_term) if parts_term else np.zeros(0, np.int64)
    node_of = np.concatenate(parts_node) if parts_node else np.zeros(0, np.int64)
    tokens = np.concatenate(parts_tokens) if parts_tokens else np.zeros(0, np.int64)
    n = len(tokens)

    prices = [t.price for t in terms]
    max_price = max(prices, default=0)
    max_fee = max_tokens * max_price // _MTOK
    max_credit = max(credit_of.values(), default=0)
    # One bound for every value below: each price (it goes into the array itself, even when no record has tokens),
    # tokens*price, fee*debit (debit <= owed <= n*max_fee), fee*bps, sums.
    bound = max(max_price, max_tokens * max_price, max_fee * min(max_credit, max(n, 1) * max_fee), max_fee * BPS,
                max(n, 1) * max_fee * BPS)
    exact = bound >= _I64_SAFE

    price_arr = np.array(prices if prices else [0], dtype=object if exact else np.int64)
    fee = _as(tokens, exact) * price_arr[term_of] // _MTOK if n else _as(tokens, exact)

    # Batch fee totals for the report (before scaling).
    offsets = np.cumsum([0] + [len(p) for p in parts_tokens])
    k = 0
    for j, s in enumerate(summaries):
        if s.counted:
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            summaries[j] = BatchSummary(s.batch_id, s.node, s.verdict, True, s.records, int(fee[lo:hi].sum()))
            k += 1

    # Sort once by (terms, node): every (terms, node) pair is a contiguous run.
    run_key = term_of * max(n_nodes, 1) + node_of
    order = np.argsort(run_key, kind="stable")
    key_s, fee_s, node_s, term_s = run_key[order], fee[order], node_of[order], term_of[order]
    starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]]) if n else np.zeros(0, np.int64)
    run_term, run_node = term_s[starts], node_s[starts]
    run_fee = np.add.reduceat(fee_s, starts) if n else fee_s

    owed = [0] * n_nodes
    counts = [0] * n_nodes
    run_len = np.diff(np.r_[starts, n]) if n else np.zeros(0, np.int64)
    for nd, f, c in zip(run_node.tolist(), run_fee.tolist(), run_len.tolist(), strict=True):
        owed[nd] += int(f)
        counts[nd] += int(c)
    nodes: dict[str, NodeDebit] = {}
    for i, name in enumerate(node_names):
        credit = credit_of.get(name, 0)
        nodes[name] = NodeDebit(name, counts[i], owed[i], credit, min(owed[i], credit))

    # Scale the fees of short nodes: f * debit // owed, per record.
    dust = 0
    short = [i for i, name in enumerate(node_names) if nodes[name].short]
    if short:
        num = np.array([nodes[nm].debit if nodes[nm].short else 1 for nm in node_names],
                       dtype=object if exact else np.int64)
        den = np.array([nodes[nm].owed if nodes[nm].short else 1 for nm in node_names],
                       dtype=object if exact else np.int64)
        fee_s = fee_s * num[node_s] // den[node_s]
        run_fee = np.add.reduceat(fee_s, starts)
        scaled_sum = [0] * n_nodes
        for nd, f in zip(run_node.tolist(), run_fee.tolist(), strict=True):
            scaled_sum[nd] += int(f)
        for i in short:
            dust += nodes[node_names[i]].debit - scaled_sum[i]

    amounts: dict[str, int] = defaultdict(int)
    roles: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    adapters: dict[bytes, dict[str, int]] = {}
    datasets: dict[bytes, int] = defaultdict(int)
    unassigned = 0

    def pay(account: str, role: str, amount: int) -> None:
        if amount:
            amounts[account] += amount
            roles[account][role] += amount

    if n:
        nbps = np.array([t.node_bps for t in terms], dtype=object if exact else np.int64)[term_s]
        abps = np.array([t.adapter_bps for t in terms], dtype=object if exact else np.int64)[term_s]
        node_part = fee_s * nbps // BPS
        adapter_part = fee_s * abps // BPS
        rest = fee_s - node_part - adapter_part
        run_node_part = np.add.reduceat(node_part, starts).tolist()
        run_adapter_part = np.add.reduceat(adapter_part, starts).tolist()
        run_fee_l = np.add.reduceat(fee_s, starts).tolist()
        run_rest = np.add.reduceat(rest, starts).tolist()
        run_tokens = np.add.reduceat(tokens[order], starts).tolist()
        # terms -> [first run, last run]
        t_bounds = np.flatnonzero(np.r_[True, run_term[1:] != run_term[:-1]]).tolist() + [len(starts)]
        for a, z in zip(t_bounds[:-1], t_bounds[1:], strict=True):
            ti = int(run_term[a])
            tm = terms[ti]
            f_sum = adapter_sum = rest_sum = assigned = 0
            for r in range(a, z):
                pay(node_names[int(run_node[r])], "node", int(run_node_part[r]))
                assigned += int(run_node_part[r])
                f_sum += int(run_fee_l[r])
                adapter_sum += int(run_adapter_part[r])
                rest_sum += int(run_rest[r])
            rep = adapters.setdefault(tm.adapter_id, defaultdict(int))
            rep["records"] += int(sum(run_len[a:z].tolist()))
            rep["tokens"] += int(sum(run_tokens[a:z]))
            rep["fees"] += f_sum
            if tm.owner is not None:  # else the price is 0: every part is 0
                pay(tm.owner, "adapter", adapter_sum)
                rep["owner"] += adapter_sum
                assigned += adapter_sum
            if not tm.datasets:
                unassigned += rest_sum
                rep["unassigned"] += rest_sum
                assigned += rest_sum
            else:
                lo, hi = int(starts[a]), (int(starts[z]) if z < len(starts) else n)
                vals, cnt = np.unique(rest[lo:hi], return_counts=True)
                if exact:
                    cnt = cnt.astype(object)
                for d_id, w, contributors, d_shares in tm.datasets:
                    d_amt = vals * w // BPS
                    if not contributors:  # a dataset the registry did not have at t
                        lost = int((d_amt * cnt).sum())
                        unassigned += lost
                        rep["unassigned"] += lost
                        assigned += lost
                        continue
                    sh = np.array(d_shares, dtype=object if exact else np.int64)
                    per = (d_amt[:, None] * sh[None, :] // BPS * cnt[:, None]).sum(axis=0).tolist()
                    got = 0
                    for c, v in zip(contributors, per, strict=True):
                        pay(c, "dataset", int(v))
                        got += int(v)
                    datasets[d_id] += got
                    rep["datasets"] += got
                    assigned += got
            dust += f_sum - assigned

    pay(treasury, "treasury", dust + unassigned)
    cumulative = dict(previous)
    for acct, v in amounts.items():
        cumulative[acct] = cumulative.get(acct, 0) + v
    cumulative = {k: v for k, v in sorted(cumulative.items()) if v > 0}
    return EpochRewards(dict(amounts), cumulative, nodes, summaries, misattributed, treasury, dust, unassigned,
                        {k: dict(v) for k, v in roles.items()}, {k: dict(v) for k, v in adapters.items()},
                        dict(datasets), n)


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
