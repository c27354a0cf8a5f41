"""Token selection for a batch of rows: greedy (vectorised) or temperature/top-p with a per-request seeded generator.

Greedy rows cost one `argmax` over the whole batch. Sampled rows share one vectorised softmax/top-p pass and then draw
from their own `torch.Generator`, so a request with a `seed` produces the same tokens whatever else is in the batch
(up to the floating-point differences of the batch shapes themselves).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from inference.errors import InferenceError

__all__ = ["SamplingParams", "SamplingParamsInvalid", "make_generator", "sample"]


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


def make_generator(params: SamplingParams, device: torch.device) -> torch.Generator | None:
    """The per-request generator: seeded from `params.seed`, or from the OS when no seed was given; None if greedy."""
    if params.greedy:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(params.seed if params.seed is not None else random.SystemRandom().getrandbits(63))
    return g


def sample(
    logits: torch.Tensor,  # [B, vocab]
    params: list[SamplingParams],
    generators: list[torch.Generator | None],
) -> torch.Tensor:
    """Next token id per row, as a [B] long tensor on the logits' device."""
    out = torch.argmax(logits, dim=-1)  # [B]
    sampled = [i for i, p in enumerate(params) if not p.greedy]
    if not sampled:
        return out
    idx = torch.tensor(sampled, device=logits.device)
    temps = torch.tensor([params[i].temperature for i in sampled], device=logits.device, dtype=torch.float32)
    top_ps = torch.tensor([params[i].top_p for i in sampled], device=logits.device, dtype=torch.float32)
    probs = torch.softmax(logits.index_select(0, idx).float() / temps[:, None], dim=-1)  # [S, vocab]
    if bool((top_ps < 1.0).any()):
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        drop = (torch.cumsum(sorted_p, dim=-1) - sorted_p) >= top_ps[:, None]
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    for j, i in enumerate(sampled):
        out[i] = torch.multinomial(probs[j], 1, generator=generators[i])[0]
    return out
