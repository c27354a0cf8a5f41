"""Record factories and hypothesis strategies shared by the attribution core tests."""

from __future__ import annotations

import os
import random

from hypothesis import strategies as st

from attribution.records import BPS_TOTAL, PendingRecord, Profile, Record

CHAIN_ID = 31337
LEDGER = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
NODE = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")


def split_bps(rng: random.Random, n: int) -> tuple[int, ...]:
    """n weights in basis points summing to 10000 (empty for n = 0)."""
    if n == 0:
        return ()
    cuts = sorted(rng.randint(0, BPS_TOTAL) for _ in range(n - 1))
    return tuple(b - a for a, b in zip([0, *cuts], [*cuts, BPS_TOTAL], strict=True))


def random_profile(rng: random.Random, max_datasets: int = 4) -> Profile:
    """A valid random profile (sometimes the bare base model: adapterId 0, no datasets)."""
    model = rng.randbytes(32)
    if rng.random() < 0.2:
        return Profile(model, b"\x00" * 32)
    n = rng.randint(0, max_datasets)
    return Profile(model, rng.randbytes(32), tuple(rng.randbytes(32) for _ in range(n)), split_bps(rng, n))


def random_records(n: int, seed: int = 0, first_seq: int = 0, n_profiles: int = 8,
                   chain_id: int = CHAIN_ID, ledger: bytes = LEDGER, node: bytes = NODE) -> list[Record]:
    """n valid records with consecutive seqs over a few shared profiles."""
    rng = random.Random(seed)
    profiles = [random_profile(rng) for _ in range(n_profiles)]
    out = []
    for i in range(n):
        p = profiles[rng.randrange(n_profiles)]
        out.append(Record(chain_id, ledger, node, first_seq + i, p.model_id, p.adapter_id, p.dataset_ids,
                          p.weights_bps, rng.randint(0, 2**32 - 1), rng.randint(0, 2**32 - 1),
                          rng.randint(0, 2**64 - 1), rng.randbytes(32)))
    return out


def pending(node: bytes = NODE, prompt_tokens: int = 3) -> PendingRecord:
    """A small valid pending record for store tests."""
    return PendingRecord(CHAIN_ID, LEDGER, node, os.urandom(32), b"\x00" * 32, (), (), prompt_tokens, 5,
                         1_760_000_000, os.urandom(32))


bytes32 = st.binary(min_size=32, max_size=32)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def profiles(draw: st.DrawFn, max_datasets: int = 5) -> Profile:
    """Valid profiles, weights summing to 10000."""
    n = draw(st.integers(0, max_datasets))
    if n == 0:
        weights: tuple[int, ...] = ()
    else:
        cuts = sorted(draw(st.lists(st.integers(0, BPS_TOTAL), min_size=n - 1, max_size=n - 1)))
        weights = tuple(b - a for a, b in zip([0, *cuts], [*cuts, BPS_TOTAL], strict=True))
    adapter = draw(st.one_of(st.just(b"\x00" * 32), bytes32))
    return Profile(draw(bytes32), adapter, tuple(draw(bytes32) for _ in range(n)), weights)


@st.composite
def record_batches(draw: st.DrawFn, max_records: int = 20) -> list[Record]:
    """Consecutive-seq records of one (chain, ledger, node) over a few profiles."""
    chain_id = draw(u64)
    ledger = draw(st.binary(min_size=20, max_size=20))
    node = draw(st.binary(min_size=20, max_size=20))
    first = draw(st.integers(0, 2**64 - 1 - max_records))
    ps = draw(st.lists(profiles(), min_size=1, max_size=4))
    n = draw(st.integers(1, max_records))
    out = []
    for i in range(n):
        p = ps[draw(st.integers(0, len(ps) - 1))]
        out.append(Record(chain_id, ledger, node, first + i, p.model_id, p.adapter_id, p.dataset_ids,
                          p.weights_bps, draw(u32), draw(u32), draw(u64), draw(bytes32)))
    return out
