"""Token selection for a batch of rows: greedy (vectorised) or temperature/top-p, every row in one vectorised pass.

Greedy rows cost one max-reduction over the whole batch. Sampled rows share one softmax/top-p pass and one inverse-CDF
draw (`searchsorted`): no per-row kernel, no host round trip. Each row's uniform number comes from a counter-based
generator (`RowGenerator`: splitmix64 of the request's seed and its draw count, computed for all rows at once on the
device), so a request with a `seed` produces the same tokens whatever else is in the batch (up to the floating-point
differences of the batch shapes themselves), on any device.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from inference.errors import InferenceError

__all__ = ["RowGenerator", "SamplingParams", "SamplingParamsInvalid", "make_generator", "sample", "uniforms"]


class SamplingParamsInvalid(InferenceError, ValueError):
    """A sampling parameter is out of range (temperature >= 0, 0 < top_p <= 1)."""


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token: temperature 0 means greedy; `seed` makes sampled output reproducible."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (self.temperature >= 0.0) or self.temperature > 100.0:
            raise SamplingParamsInvalid(f"temperature must be in [0, 100], got {self.temperature}: use 0 for greedy")
        if not (0.0 < self.top_p <= 1.0):
            raise SamplingParamsInvalid(f"top_p must be in (0, 1], got {self.top_p}: use 1 to disable nucleus sampling")

    @property
    def greedy(self) -> bool:
        """True when the next token is the argmax (temperature 0)."""
        return self.temperature == 0.0


@dataclass
class RowGenerator:
    """One request's random stream: draw n is splitmix64(seed + (n + 1) * golden gamma), a pure function of both,
    so every row of a batch draws in one vectorised op (`uniforms`)."""

    seed: int  # 0 <= seed < 2**63
    draws: int = 0


def make_generator(params: SamplingParams) -> RowGenerator | None:
    """The per-request generator: seeded from `params.seed`, or from the OS when no seed was given; None if greedy
    (the draws happen wherever the logits are, so it needs no device)."""
    if params.greedy:
        return None
    seed = params.seed if params.seed is not None else random.SystemRandom().getrandbits(63)
    return RowGenerator(seed=seed % (1 << 63))


def _i64(c: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits (torch integer math wraps modulo 2**64)."""
    return c - (1 << 64) if c >= 1 << 63 else c


_GAMMA = _i64(0x9E3779B97F4A7C15)
_MIX1 = _i64(0xBF58476D1CE4E5B9)
_MIX2 = _i64(0x94D049BB133111EB)


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def uniforms(seeds: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """[S] float64 uniforms in [0, 1): splitmix64 of ``seed + (counter + 1) * gamma`` (int64 tensors, any device)."""
    z = seeds + (counters + 1) * _GAMMA
    z = (z ^ _srl(z, 30)) * _MIX1
    z = (z ^ _srl(z, 27)) * _MIX2
    z = z ^ _srl(z, 31)
    return _srl(z, 11).double() * 2.0 ** -53


def sample(
    logits: torch.Tensor,  # [B, vocab]
    params: Sequence[SamplingParams],
    generators: Sequence[RowGenerator | None],
) -> torch.Tensor:
    """Next token id per row, as a [B] long tensor on the logits' device (each sampled row's generator advances by
    one draw)."""
    out = logits.max(dim=-1).indices  # [B]: the first maximal index, as argmax gives, in a faster CPU kernel
    sampled = [i for i, p in enumerate(params) if not p.greedy]
    if not sampled:
        return out
    dev = logits.device
    gens = [generators[i] for i in sampled]
    if any(g is None for g in gens):
        raise ValueError("a sampled row needs its RowGenerator (make_generator): got None")
    seeds = torch.tensor([g.seed for g in gens if g is not None], dtype=torch.long)
    counters = torch.tensor([g.draws for g in gens if g is not None], dtype=torch.long)
    for g in gens:
        if g is not None:
            g.draws += 1
    u = uniforms(seeds, counters).to(dev)  # [S]
    idx = torch.tensor(sampled, device=dev)
    temps = torch.tensor([params[i].temperature for i in sampled], dtype=torch.float32).to(dev)
    probs = torch.softmax(logits.index_select(0, idx).float() / temps[:, None], dim=-1)  # [S, vocab]
    order: torch.Tensor | None = None
    if any(params[i].top_p < 1.0 for i in sampled):  # decided on the host: no device round trip
        top_ps = torch.tensor([params[i].top_p for i in sampled], dtype=torch.float32).to(dev)
        probs, order = torch.sort(probs, dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        drop = (torch.cumsum(probs, dim=-1) - probs) >= top_ps[:, None]
        probs = probs.masked_fill(drop, 0.0)
    # inverse CDF: the first token whose cumulative mass exceeds u * total (a zero-mass token is never picked)
    cdf = torch.cumsum(probs, dim=-1)  # [S, vocab]
    target = (u * cdf[:, -1].double()).to(cdf.dtype)
    pick = torch.searchsorted(cdf, target[:, None], right=True).clamp_(max=probs.shape[1] - 1)  # [S, 1]
    if order is not None:
        pick = order.gather(1, pick)
    out.index_copy_(0, idx, pick[:, 0])
    return out
