"""Vectorised sampling: the counter-based generator against a pure-Python splitmix64, the draw's distribution,
batch independence of seeded rows, top-p and greedy."""

from __future__ import annotations

import pytest
import torch

from inference.sampling import RowGenerator, SamplingParams, make_generator, sample, uniforms

M64 = (1 << 64) - 1


def _splitmix64(seed: int, n: int) -> float:
    z = (seed + (n + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return (z >> 11) * 2.0 ** -53


def test_uniforms_equal_reference_splitmix64() -> None:
    seeds = [0, 1, 42, (1 << 63) - 1, 123456789123456789]
    counters = [0, 5, 1_000_000, 3, 77]
    got = uniforms(torch.tensor(seeds), torch.tensor(counters)).tolist()
    assert got == [_splitmix64(s, n) for s, n in zip(seeds, counters, strict=True)]
    assert all(0.0 <= u < 1.0 for u in got)


def test_draws_follow_the_distribution_and_skip_zero_mass_tokens() -> None:
    probs = torch.tensor([0.5, 0.0, 0.3, 0.2, 0.0])
    logits = probs.clamp_min(1e-30).log()[None].repeat(4000, 1)  # every row the same distribution
    params = [SamplingParams(temperature=1.0, seed=i) for i in range(4000)]
    gens = [make_generator(p) for p in params]
    toks = sample(logits, params, gens)
    counts = torch.bincount(toks, minlength=5).float() / 4000
    assert counts[1] == 0 and counts[4] == 0
    torch.testing.assert_close(counts, probs, atol=0.03, rtol=0)  # 4000 draws: std of a frequency <= 0.008
    assert all(g is not None and g.draws == 1 for g in gens)


def test_seeded_row_is_independent_of_its_batch() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 50)
    p = SamplingParams(temperature=0.8, top_p=0.9, seed=7)
    solo_gen = RowGenerator(seed=7)
    solo = [int(sample(logits[2:3], [p], [solo_gen])[0]) for _ in range(20)]
    mixed_gen = RowGenerator(seed=7)
    others = [SamplingParams(), SamplingParams(temperature=1.3, seed=1), p, SamplingParams(temperature=2.0),
              SamplingParams(), SamplingParams(temperature=0.5, top_p=0.5)]
    gens = [make_generator(q) for q in others]
    gens[2] = mixed_gen
    mixed = [int(sample(logits, others, gens)[2]) for _ in range(20)]
    assert solo == mixed
    assert len(set(solo)) > 1  # really sampled, not the argmax every time
    other = RowGenerator(seed=8)
    assert [int(sample(logits[2:3], [p], [other])[0]) for _ in range(20)] != solo


def test_greedy_rows_and_tiny_top_p_are_the_argmax() -> None:
    torch.manual_seed(1)
    logits = torch.randn(5, 30)
    params = [SamplingParams(), SamplingParams(temperature=1.0, top_p=1e-6, seed=3)] * 2 + [SamplingParams()]
    out = sample(logits, params, [make_generator(p) for p in params])
    assert out.tolist() == logits.argmax(-1).tolist()
    with pytest.raises(ValueError, match="RowGenerator"):
        sample(logits[:2], params[:2], [None, None])
