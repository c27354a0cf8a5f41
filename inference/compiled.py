"""The portable forward's fused pieces, eager or through `torch.compile` (``LORALEDGER_KERNELS=compiled``).

Around its weight matmuls a Llama layer is chains of small elementwise ops: residual add + RMSNorm, RoPE on q and k,
SiLU(gate) * up. Eager torch runs each op as its own pass over the activations with its own dispatch; inductor fuses
each chain into one generated loop (vectorised C++ for the CPU it runs on, Triton on CUDA). The weight matmuls stay
eager BLAS calls (inside a compiled graph they measured slower on CPU), and so do the LoRA routing and attention
(their shapes and index tensors change every step).

Size: on CPU a compiled call has a fixed cost (guards, dispatch; ~50 us a call here) that fusion only repays on
large activations, so a forward runs the compiled pieces when its activations have at least `CPU_MIN_ELEMENTS`
elements (tokens x hidden: prefill waves) and the eager ones below (decode steps of a typical batch); on CUDA always
compiled. The crossover is measured in docs/inference-engine.md.

Shapes: every piece is compiled with a dynamic token dimension, so a new batch size or prompt length reuses the
graph instead of recompiling; row counts 0 and 1 are specialised by dynamo (one more graph each, compiled once).
`compile_seconds()` is the wall time spent in calls that compiled something, which the serving bench reports apart
from throughput.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["CPU_MIN_ELEMENTS", "Ops", "compile_seconds", "ops", "use_compiled"]

# tokens x hidden from which the compiled pieces beat eager torch on CPU (128 tokens at hidden 512)
CPU_MIN_ELEMENTS = 65_536


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm with transformers' op order (fp32 statistics), so greedy tokens match LlamaRMSNorm exactly."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[x1, x2] -> [-x2, x1] over the last dimension (RoPE's rotation)."""
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def add_norm(x: torch.Tensor, y: torch.Tensor | None, ln: torch.Tensor,
             eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x + y, RMSNorm(x + y)): a layer's residual add and the pre-norm of its next sublayer."""
    if y is not None:
        x = x + y
    return x, rms_norm(x, ln, eps)


def rope_qk(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int, n_kv: int,
            head_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k (rotated) and v as [N, heads, D] views of the fused projection [N, (H + 2 Hkv) D]."""
    n = qkv.shape[0]
    qs, kvs = n_heads * head_dim, n_kv * head_dim
    qk = qkv[:, :qs + kvs].view(n, n_heads + n_kv, head_dim)  # RoPE on q and k heads together
    qk = qk * cos + rotate_half(qk) * sin
    v = qkv[:, qs + kvs:].view(n, n_kv, head_dim)
    return qk[:, :n_heads], qk[:, n_heads:], v


def gate_mul(gu: torch.Tensor, inter: int, act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """act(gate) * up [N, I] from the fused gate/up output [N, 2 I]."""
    return act(gu[:, :inter]) * gu[:, inter:]


class Ops:
    """The pieces one forward uses: the plain functions above, or their compiled versions."""

    def __init__(self, compiled: bool) -> None:
        self.compiled = compiled
        wrap = _compiled if compiled else (lambda f: f)
        self.add_norm = wrap(add_norm)
        self.rope_qk = wrap(rope_qk)
        self.gate_mul = wrap(gate_mul)


_lock = threading.Lock()
_compile_s = 0.0
_ops: dict[bool, Ops] = {}


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`torch.compile(fn, dynamic=True)`, counting the wall time of calls that compiled a new graph."""
    cfn = torch.compile(fn, dynamic=True)

    def call(*args: Any) -> Any:
        global _compile_s
        before = _graphs()
        t0 = time.perf_counter()
        out = cfn(*args)
        if _graphs() != before:
            with _lock:
                _compile_s += time.perf_counter() - t0
        return out

    call.__name__ = f"compiled_{fn.__name__}"
    return call


def ops(compiled: bool) -> Ops:
    """The shared `Ops` (one set of compiled functions per process, so graphs are compiled once)."""
    with _lock:
        if compiled not in _ops:
            _ops[compiled] = Ops(compiled)
        return _ops[compiled]


def use_compiled(device: torch.device, tokens: int, hidden: int) -> bool:
    """Whether a compiled `Ops` pays off for a forward of `tokens` rows: always on an accelerator, on CPU from
    `CPU_MIN_ELEMENTS` activation elements (read at call time, so a test can lower it)."""
    return device.type != "cpu" or tokens * hidden >= CPU_MIN_ELEMENTS


def compile_seconds() -> float:
    """Wall seconds spent so far in calls that compiled a graph (0 when nothing was compiled)."""
    return _compile_s
