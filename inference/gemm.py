"""The base model's weight GEMMs: plain `F.linear`, or oneDNN with the weight pre-packed once (``LORALEDGER_GEMM``).

`F.linear` on CPU hands every call to MKL's sgemm over the row-major weight, which copies panels of the weight into
its own blocked buffers inside every call. oneDNN (bundled with torch's x86-64 and arm64 builds) instead takes the
weight once into the blocked layout its JIT kernel reads (`torch.ops.mkldnn._reorder_linear_weight`, the op
inductor's `freezing` inserts) and runs a kernel generated for this CPU's ISA (AVX2, AVX-512, AMX) on every call
after (`torch.ops.mkldnn._linear_pointwise`). vLLM's CPU backend does the same through its own oneDNN build
(`create_onednn_mm`). Measured per shape and row count by `loraledger bench gemm`; the figures are in
docs/inference-engine.md.

The switch, read when a forward is built:

- ``auto`` (default): oneDNN where it can run (a CPU model in fp32, or bf16/fp16 where this CPU computes them
  natively, and torch built with oneDNN), else `F.linear`;
- ``onednn``: oneDNN, raising `GemmUnavailable` where it cannot run (so a run that asked for it never silently
  measures something else);
- ``plain``: `F.linear` on the row-major weight everywhere (the reference the packed path is tested against).

The packed weight is a second copy of each layer weight and of lm_head: the model keeps its own row-major tensors
(the engine's forward shares them, and transformers, peft and the vLLM bench rows still use the model), so the
process holds the GEMM weights twice on CPU. LoRA never sees the packed copy: its deltas are added to the
GEMM's output (`inference.lora`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from inference.errors import InferenceError, choice_from_env

__all__ = ["CHOICES", "ENV", "GemmUnavailable", "Linear", "mode", "onednn_status", "selected"]

ENV = "LORALEDGER_GEMM"
CHOICES = ("auto", "onednn", "plain")

# Row count the packed layout is chosen for: a typical decode batch. Every other row count runs on the same packed
# copy (oneDNN builds a primitive per row count over it); vLLM probes with 128 the same way.
PACK_ROWS_HINT = 64

# Row counts where MKL's sgemm on the row-major fp32 weight beats oneDNN's packed kernel, measured per shape and
# thread count by `loraledger bench gemm` (docs/inference-engine.md): a single row (a GEMV, memory-bound: oneDNN's
# primitive is ~1.5x slower there at one thread, even at two) and big prefill waves (from 256 rows at one thread and
# from 512 at two, MKL's own blocking is 5-15 % faster). Between them, decode batches, the packed kernel wins by up
# to 3x. Both paths read the same fp32 weights, so only rounding differs (checked by test_gemm.py).
PLAIN_ROWS_AT_MOST = 1
PLAIN_ROWS_FROM = {1: 256}  # torch threads -> first row count for plain sgemm
PLAIN_ROWS_FROM_MORE_THREADS = 512


def plain_rows_from() -> int:
    """The first row count at which `Linear` goes back to plain sgemm, for the current torch thread count."""
    return PLAIN_ROWS_FROM.get(torch.get_num_threads(), PLAIN_ROWS_FROM_MORE_THREADS)


class GemmUnavailable(InferenceError, RuntimeError):
    """The oneDNN GEMMs were asked for (LORALEDGER_GEMM=onednn) but cannot run for this model on this machine."""


def mode() -> str:
    """The requested GEMM path, from LORALEDGER_GEMM (default ``auto``); an unknown value raises InferenceError."""
    return choice_from_env(ENV, CHOICES, "a GEMM path")


def onednn_status(device: torch.device, dtype: torch.dtype) -> tuple[bool, str]:
    """(whether oneDNN packed GEMMs can run for weights of `dtype` on `device`, why not when they cannot)."""
    if device.type != "cpu":
        return False, f"the model is on {device.type}, and the oneDNN packed GEMMs are for CPU models"
    if not torch.backends.mkldnn.is_available():
        return False, "this torch build has no oneDNN (mkldnn)"
    if dtype == torch.float32:
        return True, ""
    if dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return True, ""
    if dtype == torch.float16 and torch.ops.mkldnn._is_mkldnn_fp16_supported():
        return True, ""
    return False, f"this CPU has no native {dtype} GEMM in oneDNN (AVX-512 BF16/FP16 or AMX): serve fp32"


def selected(device: torch.device, dtype: torch.dtype) -> str:
    """The GEMM path for weights of `dtype` on `device`: ``"onednn"`` or ``"plain"`` (what benches and logs report)."""
    m = mode()
    if m == "plain":
        return "plain"
    ok, why = onednn_status(device, dtype)
    if m == "onednn" and not ok:
        raise GemmUnavailable(f"{ENV}=onednn but {why}: set {ENV}=plain (or auto) to use F.linear")
    return "onednn" if ok else "plain"


class Linear:
    """``y = x @ weight.T + bias`` through the selected GEMM, the weight packed once at construction.

    `weight` [out, in] stays referenced (the model owns it); `packed` is oneDNN's copy, None on the plain path."""

    __slots__ = ("bias", "by_rows", "packed", "weight")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, path: str,
                 packs: dict[tuple[Any, ...], torch.Tensor] | None = None) -> None:
        self.weight = weight
        self.bias = bias
        self.packed: torch.Tensor | None = None
        if path == "onednn":
            # `packs` (one dict per model) lets every forward over the same weights share one packed copy, so a
            # second engine on a model, or engines built one after another before the last is collected, add none
            key = (weight.data_ptr(), tuple(weight.shape), tuple(weight.stride()), weight.dtype, weight._version)
            packed = None if packs is None else packs.get(key)
            if packed is None:
                packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), PACK_ROWS_HINT)
                if packs is not None:
                    packs[key] = packed
            self.packed = packed
        # the row-count switch is measured for fp32 only (bf16/fp16 weights go to oneDNN at every row count)
        self.by_rows = self.packed is not None and weight.dtype == torch.float32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """[N, in] -> [N, out]."""
        rows = x.shape[0]
        if self.packed is None or rows == 0 or (self.by_rows and (rows <= PLAIN_ROWS_AT_MOST
                                                                   or rows >= plain_rows_from())):
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, self.bias, "none", [], "")

    @property
    def packed_bytes(self) -> int:
        """Bytes of the packed copy (0 on the plain path)."""
        if self.packed is None:
            return 0
        return int(torch.ops.mkldnn._nbytes(self.packed))
