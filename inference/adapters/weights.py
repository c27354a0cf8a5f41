"""Loading and validating one peft LoRA adapter into plain tensors (`LoraWeights`).

The engine never runs peft: it reads the adapter's safetensors file, checks it against the base model's config and
hands the batched LoRA math a dict ``(layer_idx, module) -> tensor``. Validation order (first failure wins):
config sanity, unsupported features, rank cap, size limit, file readability, key names, module/layer existence,
shapes, finiteness. Each failure raises its named error from `inference.adapters.errors`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import pathlib
import re
from dataclasses import dataclass
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from inference.adapters.errors import (
    AdapterConfigInvalid,
    AdapterRankTooLarge,
    AdapterShapeMismatch,
    AdapterTargetModuleUnknown,
    AdapterTooLarge,
    AdapterUnsupportedFeature,
    AdapterWeightsInvalid,
)
from inference.adapters.identity import adapter_id_of, canonical_json, read_config, weights_path

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RANK",
    "MODULE_ORDER",
    "LoraWeights",
    "adapter_id_of",
    "linear_shapes",
    "load_adapter",
    "parse_lora_key",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_RANK = 64
DEFAULT_MAX_BYTES = 256 * 2**20

# Linear layers of a Llama-family decoder layer that LoRA may target, in a fixed order, with their parent block.
MODULE_ORDER: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_PARENT = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
_EMBEDDING_MODULES = ("embed_tokens", "lm_head")
_PEFT_DEFAULT_ALPHA = 8  # LoraConfig.lora_alpha's default: what peft uses when the config omits it

# peft's saved key layout for a Llama-family CausalLM (the adapter name is stripped on save).
_KEY = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(\w+)\.(\w+)\.lora_([AB])\.weight$")


@dataclass(frozen=True, eq=False)
class LoraWeights:
    """One validated LoRA adapter as plain tensors: ``delta(x) = scaling * (x @ A.T) @ B.T`` per target module."""

    adapter_id: bytes
    name: str
    rank: int
    scaling: float
    target_modules: tuple[str, ...]
    a: dict[tuple[int, str], torch.Tensor]  # (layer_idx, module) -> lora_A [rank, in_features]
    b: dict[tuple[int, str], torch.Tensor]  # (layer_idx, module) -> lora_B [out_features, rank]
    nbytes: int

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> LoraWeights:
        """A copy with every tensor on `device` (and `dtype` if given); returns self if nothing changes."""
        dev = torch.device(device)
        sample = next(iter(self.a.values()))
        if sample.device == dev and (dtype is None or sample.dtype == dtype):
            return self
        a = {k: v.to(device=dev, dtype=dtype) for k, v in self.a.items()}
        b = {k: v.to(device=dev, dtype=dtype) for k, v in self.b.items()}
        return dataclasses.replace(self, a=a, b=b, nbytes=_nbytes(a, b))

    def pinned(self) -> LoraWeights:
        """A copy in page-locked host memory, so that copies to a CUDA device can run asynchronously
        (``non_blocking=True``). Only for CPU tensors on a machine with CUDA; strides are kept."""
        a = {k: v.pin_memory() for k, v in self.a.items()}
        b = {k: v.pin_memory() for k, v in self.b.items()}
        return dataclasses.replace(self, a=a, b=b)

    @property
    def layers(self) -> tuple[int, ...]:
        """Sorted indices of the layers this adapter touches."""
        return tuple(sorted({layer for layer, _ in self.a}))


def _nbytes(a: dict[tuple[int, str], torch.Tensor], b: dict[tuple[int, str], torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in a.values()) + sum(t.numel() * t.element_size() for t in b.values())


def linear_shapes(base_config: Any) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each LoRA-targetable linear of one decoder layer, from a Llama-style config."""
    hidden = int(base_config.hidden_size)
    heads = int(base_config.num_attention_heads)
    kv_heads = int(getattr(base_config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(base_config, "head_dim", None) or hidden // heads)
    inter = int(base_config.intermediate_size)
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def parse_lora_key(key: str) -> tuple[int, str, str] | None:
    """Map a peft key ``base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`` to ``(i, "q_proj", "A")``.

    Returns None for keys that are not a decoder-layer lora_A/lora_B weight (the caller decides what they mean).
    The parent block is not checked here (see `load_adapter`).
    """
    m = _KEY.match(key)
    if m is None:
        return None
    return int(m.group(1)), m.group(3), m.group(4)


# peft config settings this engine refuses, checked in this order when set (truthy and not "none"):
# (config keys, the first naming the feature), what (may show the `value`), how to fix.
_REFUSED_FLAGS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("use_dora",), "DoRA (use_dora=true)", "retrain as plain LoRA (use_dora=false)"),
    (("bias",), "bias={value!r}", "retrain with bias='none' (base biases must stay frozen)"),
    (("lora_bias",), "a bias on lora_B (lora_bias=true)", "retrain with lora_bias=false"),
    (("modules_to_save",), "modules_to_save={value!r} (fully trained extra modules)",
     "retrain without modules_to_save; only low-rank deltas are served"),
    (("rank_pattern", "alpha_pattern"), "per-module ranks or alphas (rank_pattern/alpha_pattern)",
     "retrain with one r and lora_alpha for every module"),
    (("fan_in_fan_out",), "fan_in_fan_out=true (Conv1D-style weights)", "use a Llama-family base"),
    (("layer_replication",), "layer_replication", "retrain without layer replication"),
    (("target_parameters",), "target_parameters (LoRA on raw parameters)", "target nn.Linear modules only"),
    (("trainable_token_indices",), "trainable_token_indices (trained embedding rows)",
     "retrain without trainable tokens"),
    (("use_qalora",), "QALoRA (use_qalora=true)", "retrain as plain LoRA"),
    (("alora_invocation_tokens",), "activated LoRA (alora_invocation_tokens)", "retrain as plain LoRA"),
    (("use_bdlora",), "block-diagonal LoRA (use_bdlora=true)", "retrain as plain LoRA"),
)


def _features_refused(cfg: dict[str, Any], where: str) -> None:
    """Raise `AdapterUnsupportedFeature` for the first peft feature in `cfg` this engine does not serve."""

    def refuse(feature: str, what: str, fix: str) -> None:
        raise AdapterUnsupportedFeature(f"{where}: {what} is not supported by this engine; {fix}",
                                        feature=feature, adapter=where)

    for keys, what, fix in _REFUSED_FLAGS:
        for key in keys:
            value = cfg.get(key)
            if value and value != "none":
                refuse(keys[0], what.format(value=value), fix)
    targets = cfg.get("target_modules")
    names = [targets] if isinstance(targets, str) else list(targets or [])
    for t in names:
        if isinstance(t, str) and t.split(".")[-1] in _EMBEDDING_MODULES:
            refuse("embedding_lora", f"LoRA on {t} (embedding/LM head)",
                   "target only attention/MLP projections (q_proj ... down_proj)")


def _check_config(cfg: dict[str, Any], where: str, max_rank: int) -> tuple[int, float]:
    """Sanity-check the config; returns (rank, scaling)."""
    peft_type = cfg.get("peft_type")
    if peft_type != "LORA":
        raise AdapterConfigInvalid(f"{where}: peft_type is {peft_type!r}, expected 'LORA': only LoRA adapters "
                                   "are served", adapter=where)
    r = cfg.get("r")
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        raise AdapterConfigInvalid(f"{where}: r={r!r} must be a positive integer (the LoRA rank)", adapter=where)
    alpha = cfg.get("lora_alpha", _PEFT_DEFAULT_ALPHA)
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha <= 0:
        raise AdapterConfigInvalid(f"{where}: lora_alpha={alpha!r} must be a positive finite number", adapter=where)
    targets = cfg.get("target_modules")
    if not (targets is None or isinstance(targets, str)
            or (isinstance(targets, list) and all(isinstance(t, str) for t in targets))):
        raise AdapterConfigInvalid(f"{where}: target_modules={targets!r} must be a module name, a regex string or a "
                                   "list of module names (e.g. [\"q_proj\", \"v_proj\"]): fix the adapter config",
                                   adapter=where)
    _features_refused(cfg, where)
    if r > max_rank:
        raise AdapterRankTooLarge(f"{where}: rank r={r} exceeds this node's max_rank={max_rank}: retrain with "
                                  f"r <= {max_rank} or raise the node's max adapter rank", rank=r, max_rank=max_rank,
                                  adapter=where)
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    return r, float(scaling)


def _check_targets_listed(cfg: dict[str, Any], where: str) -> None:
    targets = cfg.get("target_modules")
    if not isinstance(targets, list):
        return  # a regex string or "all-linear": the tensor keys decide
    for t in targets:
        short = str(t).split(".")[-1]
        if short not in MODULE_ORDER:
            raise AdapterTargetModuleUnknown(
                f"{where}: target module {t!r} does not exist in a Llama-family decoder layer (known: "
                f"{', '.join(MODULE_ORDER)}): the adapter was trained for another architecture", adapter=where)


def _warn_base_mismatch(cfg: dict[str, Any], base_config: Any, where: str) -> None:
    want = cfg.get("base_model_name_or_path") or ""
    have = getattr(base_config, "name_or_path", "") or getattr(base_config, "_name_or_path", "") or ""
    if want and have and pathlib.PurePath(str(want)).name != pathlib.PurePath(str(have)).name:
        logger.warning("adapter %s was trained on base %r but is loaded on %r: shapes fit, outputs may not",
                       where, pathlib.PurePath(str(want)).name, pathlib.PurePath(str(have)).name)


def _check_size(size: int, max_bytes: int, wp: pathlib.Path, where: str) -> None:
    if size > max_bytes:
        raise AdapterTooLarge(f"{where}: {wp.name} is {size} bytes, over this node's limit of {max_bytes} bytes: "
                              "use a smaller rank or fewer target modules, or raise the node's max adapter bytes",
                              nbytes=size, max_bytes=max_bytes, adapter=where)


def load_adapter(
    path: str | os.PathLike[str],
    base_config: Any,
    *,
    max_rank: int = DEFAULT_MAX_RANK,
    max_bytes: int = DEFAULT_MAX_BYTES,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    name: str | None = None,
) -> LoraWeights:
    """Load a peft LoRA adapter directory, validate it against `base_config`, and return its tensors.

    `base_config` is the base model's transformers config (Llama family). Raises `AdapterNotFound`,
    `AdapterNotSafetensors`, `AdapterConfigInvalid`, `AdapterUnsupportedFeature`, `AdapterRankTooLarge`,
    `AdapterTooLarge`, `AdapterWeightsInvalid`, `AdapterTargetModuleUnknown` or `AdapterShapeMismatch`.
    """
    d = pathlib.Path(path)
    where = str(d)
    cfg = read_config(d)
    rank, scaling = _check_config(cfg, where, max_rank)
    _check_targets_listed(cfg, where)
    _warn_base_mismatch(cfg, base_config, where)

    wp = weights_path(d)
    _check_size(wp.stat().st_size, max_bytes, wp, where)
    raw = wp.read_bytes()
    _check_size(len(raw), max_bytes, wp, where)  # the file may have been replaced since stat()
    h = hashlib.sha256(canonical_json(cfg))
    h.update(raw)
    adapter_id = h.digest()
    try:
        tensors = load_safetensors(raw)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise AdapterWeightsInvalid(f"{where}: {wp.name} is not a readable safetensors file ({e}): re-save it",
                                    adapter=where) from e
    if not tensors:
        raise AdapterWeightsInvalid(f"{where}: {wp.name} holds no tensors: re-save the trained adapter",
                                    adapter=where)

    shapes = linear_shapes(base_config)
    n_layers = int(base_config.num_hidden_layers)
    a: dict[tuple[int, str], torch.Tensor] = {}
    b: dict[tuple[int, str], torch.Tensor] = {}
    for key in sorted(tensors):
        t = tensors[key]
        parsed = parse_lora_key(key)
        if parsed is None:
            _refuse_key(key, where)
            continue  # unreachable: _refuse_key always raises
        layer, module, ab = parsed
        parent = _KEY.match(key).group(2)  # type: ignore[union-attr]
        if module not in _PARENT or _PARENT[module] != parent:
            raise AdapterTargetModuleUnknown(
                f"{where}: tensor {key} targets {parent}.{module}, which a Llama-family decoder layer does not have "
                f"(known: {', '.join(f'{_PARENT[m]}.{m}' for m in MODULE_ORDER)}): use an adapter for this base",
                adapter=where)
        if layer >= n_layers:
            raise AdapterTargetModuleUnknown(
                f"{where}: tensor {key} targets layer {layer} but the base model has {n_layers} layers "
                f"(0..{n_layers - 1}): use an adapter trained for this base", adapter=where)
        if not t.is_floating_point():
            raise AdapterWeightsInvalid(f"{where}: tensor {key} has dtype {t.dtype}, expected floating point: "
                                        "re-save the adapter in float32/bfloat16/float16", adapter=where)
        in_f, out_f = shapes[module]
        want = (rank, in_f) if ab == "A" else (out_f, rank)
        if tuple(t.shape) != want:
            raise AdapterShapeMismatch(
                f"{where}: tensor {key} has shape {list(t.shape)}, expected {list(want)} (rank {rank}, base "
                f"{module} in={in_f} out={out_f}): the adapter was trained for a different base model or its "
                "config's r does not match the tensors", adapter=where)
        (a if ab == "A" else b)[(layer, module)] = t
    for k in sorted(a.keys() ^ b.keys()):
        have, miss = ("lora_A", "lora_B") if k in a else ("lora_B", "lora_A")
        raise AdapterWeightsInvalid(f"{where}: layer {k[0]} {k[1]} has {have} but no {miss}: the file is "
                                    "incomplete, re-save the adapter", adapter=where)
    a, b = _to_storage(a, b, torch.device(device), dtype, where)
    present = {m for _, m in a}
    weights = LoraWeights(
        adapter_id=adapter_id,
        name=name or d.name,
        rank=rank,
        scaling=scaling,
        target_modules=tuple(m for m in MODULE_ORDER if m in present),
        a=a,
        b=b,
        nbytes=_nbytes(a, b),
    )
    logger.debug("loaded adapter %s id=%s rank=%d modules=%s bytes=%d", weights.name, adapter_id.hex(), rank,
                 ",".join(weights.target_modules), weights.nbytes)
    return weights


def _to_storage(a: dict[tuple[int, str], torch.Tensor], b: dict[tuple[int, str], torch.Tensor], dev: torch.device,
                dtype: torch.dtype, where: str) -> tuple[dict[tuple[int, str], torch.Tensor],
                                                         dict[tuple[int, str], torch.Tensor]]:
    """Every A and B in `dtype` on `dev`, stored transposed (A as [in, rank], B as [rank, out], exposed as the usual
    [rank, in] / [out, rank] views) in one buffer, checked for NaN/Inf in one pass.

    The transposed layout is the engine's LoRA pool's, so moving an adapter to the device tier is a plain copy (the
    transposes run here, on the loader thread, not on the engine thread at admission). One buffer and one check
    instead of one allocation, copy and check per tensor: a cold load was dominated by those per-tensor calls."""
    srcs = sorted(a.items()) + sorted(b.items())
    flat = torch.empty(sum(v.numel() for _, v in srcs), device=dev, dtype=dtype)
    views: list[torch.Tensor] = []
    off = 0
    for _, v in srcs:
        rows, cols = v.shape
        dst = flat[off:off + v.numel()].view(cols, rows)
        dst.copy_(v.T)
        views.append(dst.T)
        off += v.numel()
    # NaN and Inf survive a sum: a finite sum proves every value finite (finite values that overflow it get the
    # exact check below, which lets them through), at a fraction of an elementwise isfinite pass
    if not math.isfinite(float(flat.sum(dtype=torch.float32))):
        for (k, v), view in zip(srcs, views, strict=True):  # name the first bad module
            if not bool(torch.isfinite(v).all()):
                raise AdapterWeightsInvalid(f"{where}: layer {k[0]} {k[1]} holds NaN or Inf values: the adapter "
                                            "diverged in training, use an earlier checkpoint", adapter=where)
            if not bool(torch.isfinite(view).all()):
                raise AdapterWeightsInvalid(f"{where}: layer {k[0]} {k[1]} holds values beyond {dtype}'s range: "
                                            "serve it in a wider dtype or rescale the adapter", adapter=where)
    n_a = len(a)
    return ({k: t for (k, _), t in zip(srcs[:n_a], views[:n_a], strict=True)},
            {k: t for (k, _), t in zip(srcs[n_a:], views[n_a:], strict=True)})


def _refuse_key(key: str, where: str) -> None:
    """Name the feature behind a tensor key that is not a decoder-layer lora_A/lora_B weight."""
    if "lora_magnitude_vector" in key:
        raise AdapterUnsupportedFeature(f"{where}: tensor {key} is a DoRA magnitude vector; DoRA is not supported, "
                                        "retrain as plain LoRA", feature="use_dora", adapter=where)
    if "lora_embedding_" in key or any(f".{m}." in key for m in _EMBEDDING_MODULES):
        raise AdapterUnsupportedFeature(f"{where}: tensor {key} is LoRA on the embedding/LM head, which is not "
                                        "supported: target only attention/MLP projections", feature="embedding_lora",
                                        adapter=where)
    if re.search(r"\.lora_[AB]\.bias$", key):
        raise AdapterUnsupportedFeature(f"{where}: tensor {key} is a LoRA bias (lora_bias=true), which is not "
                                        "supported: retrain with lora_bias=false", feature="lora_bias", adapter=where)
    if ".lora_" not in key:
        raise AdapterUnsupportedFeature(f"{where}: tensor {key} is a fully trained module (modules_to_save or a "
                                        "bias), which is not supported: only low-rank deltas are served",
                                        feature="modules_to_save", adapter=where)
    raise AdapterTargetModuleUnknown(f"{where}: tensor {key} does not name a decoder-layer projection "
                                     "(expected base_model.model.model.layers.<i>.self_attn|mlp.<module>.lora_A|"
                                     "lora_B.weight): use an adapter saved by peft for a Llama-family base",
                                     adapter=where)
