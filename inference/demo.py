"""Demo assets made locally, with no download: a BPE tokenizer and a small Llama trained on text that ships with
Python itself, LoRA adapters each trained on a different stdlib package's docstrings, and synthetic adapters.

`init_demo` writes ``<dir>/model`` (HF directory: safetensors + tokenizer), ``<dir>/adapters/<name>`` (peft
directories) and ``<dir>/manifest.json``; `synth_adapters` writes N random adapters for load tests.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import json
import logging
import math
import os
import pathlib
import platform
import shutil
import sysconfig
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from inference.adapters.identity import CONFIG_NAME, WEIGHTS_NAME
from inference.adapters.weights import MODULE_ORDER, linear_shapes
from inference.chat import CHAT_TEMPLATE
from inference.errors import InferenceError

__all__ = [
    "ADAPTER_MODULES",
    "MANIFEST_NAME",
    "PRESETS",
    "DemoError",
    "DemoPreset",
    "build_llama",
    "dataset_id",
    "init_demo",
    "load_config",
    "lora_config_dict",
    "random_lora_tensors",
    "read_manifest",
    "stdlib_docs",
    "synth_adapters",
    "train_tokenizer",
    "write_adapter_dir",
    "write_random_adapter",
]

logger = logging.getLogger(__name__)

BOS, EOS, PAD = "<s>", "</s>", "<pad>"


class DemoError(InferenceError):
    """Building demo assets failed (bad arguments, unreadable stdlib text, or an incomplete demo directory)."""


def _module_files(module: str) -> list[pathlib.Path]:
    """Source files of a pure-Python stdlib module or package, read from the install (frozen modules included)."""
    root = pathlib.Path(sysconfig.get_paths()["stdlib"]) / pathlib.Path(*module.split("."))
    if root.is_dir() and (root / "__init__.py").is_file():
        return sorted(p for p in root.rglob("*.py") if not ({"test", "tests", "idle_test"} & set(p.parts)))
    if root.with_suffix(".py").is_file():
        return [root.with_suffix(".py")]
    raise DemoError(f"stdlib module {module!r} has no Python source in {root.parent}: pick another module name")


def _prose(doc: str) -> str:
    """Reflow a docstring: paragraphs kept, lines inside a paragraph joined by single spaces."""
    paragraphs = [" ".join(line.strip() for line in para.splitlines() if line.strip()) for para in doc.split("\n\n")]
    return "\n".join(p for p in paragraphs if p)


@functools.lru_cache(maxsize=64)
def stdlib_docs(module: str, *, max_chars: int | None = None) -> str:
    """The docstrings (module, classes, functions) of a stdlib module or package, joined by blank lines."""
    parts: list[str] = []
    for f in _module_files(module):
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 20:
                    parts.append(_prose(doc))
    text = "\n\n".join(parts)
    if not text:
        raise DemoError(f"stdlib module {module!r} has no docstrings to train on: pick another module")
    return text[:max_chars] if max_chars else text


def python_license() -> str:
    """The LICENSE.txt shipped with this Python installation ('' if the install lacks it)."""
    p = pathlib.Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else ""


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> transformers.PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (deterministic for the same texts) with <s>, </s>, <pad> special tokens.

    Encoding prepends <s> like Llama's tokenizer; decoding is byte-exact for any UTF-8 text.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                                padding_side="left")
    fast.chat_template = CHAT_TEMPLATE  # saved in tokenizer_config.json; the node renders chat requests with it
    return fast


def build_llama(
    tokenizer: transformers.PreTrainedTokenizerBase,
    *,
    hidden: int,
    layers: int,
    heads: int,
    kv_heads: int | None = None,
    intermediate: int,
    seed: int,
    max_positions: int = 2048,
    initializer_range: float = 0.02,
) -> transformers.LlamaForCausalLM:
    """A random-init Llama sized as asked, with the tokenizer's vocab and special ids (seeded, deterministic)."""
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads or heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=initializer_range,
    )
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    model.eval()
    return model


def lora_config_dict(*, rank: int, alpha: float, targets: Sequence[str], base: str = "") -> dict[str, Any]:
    """An adapter_config.json body for plain LoRA, as peft writes it (only the fields peft needs to load it)."""
    return {
        "base_model_name_or_path": base or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": rank,
        "target_modules": sorted(targets),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }


def write_adapter_dir(out_dir: str | os.PathLike[str], config: dict[str, Any],
                      tensors: dict[str, torch.Tensor]) -> pathlib.Path:
    """Write a peft adapter directory (adapter_config.json + adapter_model.safetensors)."""
    d = pathlib.Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / WEIGHTS_NAME), metadata={"format": "pt"})
    return d


def _peft_key(layer: int, module: str, ab: str) -> str:
    parent = "self_attn" if module in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"base_model.model.model.layers.{layer}.{parent}.{module}.lora_{ab}.weight"


def random_lora_tensors(base_config: Any, *, seed: int, rank: int, targets: Sequence[str],
                        a_std: float | None = None, b_std: float = 0.05) -> dict[str, torch.Tensor]:
    """Seeded random lora_A/lora_B tensors (B non-zero, unlike peft's init) in peft's saved key layout."""
    shapes = linear_shapes(base_config)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for layer in range(int(base_config.num_hidden_layers)):
        for module in (m for m in MODULE_ORDER if m in targets):
            in_f, out_f = shapes[module]
            std_a = a_std if a_std is not None else in_f ** -0.5
            out[_peft_key(layer, module, "A")] = torch.randn(rank, in_f, generator=gen) * std_a
            out[_peft_key(layer, module, "B")] = torch.randn(out_f, rank, generator=gen) * b_std
    return out


def write_random_adapter(out_dir: str | os.PathLike[str], base_config: Any, *, seed: int, rank: int = 16,
                         targets: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"), alpha: float | None = None,
                         base: str = "") -> pathlib.Path:
    """Write one synthetic adapter with seeded random A and B (a valid peft directory)."""
    tensors = random_lora_tensors(base_config, seed=seed, rank=rank, targets=targets)
    cfg = lora_config_dict(rank=rank, alpha=alpha if alpha is not None else 2 * rank, targets=targets, base=base)
    return write_adapter_dir(out_dir, cfg, tensors)


def dataset_id(text: str) -> bytes:
    """datasetId of a demo dataset: sha256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).digest()


# ------------------------------------------------------------------------------------------------ demo init

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
MODEL_NAME = "demo-llama"

# Texts the base model and tokenizer learn from (docstrings of these stdlib packages + Python's LICENSE.txt).
BASE_MODULES: tuple[str, ...] = ("typing", "inspect", "pydoc", "pathlib", "functools", "dataclasses", "enum",
                                 "contextlib", "shutil", "threading", "subprocess", "tarfile", "zipfile", "string")
# One adapter per module, each trained on that package's docstrings only (so their outputs differ).
ADAPTER_MODULES: tuple[str, ...] = ("json", "http", "email", "asyncio", "unittest", "argparse", "collections",
                                    "logging", "xml", "urllib", "concurrent", "importlib", "multiprocessing",
                                    "tkinter", "datetime", "decimal")


@dataclass(frozen=True)
class DemoPreset:
    """Sizes and training budget of a demo build."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    base_steps: int
    adapter_steps: int
    seq_len: int
    batch: int
    max_chars: int | None  # per text; None = all of it
    base_lr: float = 3e-3
    adapter_lr: float = 1e-2


PRESETS: dict[str, DemoPreset] = {
    # the demo the node serves: ~5M parameters, under 2 minutes on one CPU thread; small batches, more steps:
    # the adapters' greedy outputs differ (8 of 8 on the same prompt), which they did not with 120 steps of 8
    "demo": DemoPreset(vocab=4096, hidden=256, layers=4, heads=4, intermediate=688, base_steps=240,
                       adapter_steps=48, seq_len=128, batch=4, max_chars=None, base_lr=3e-3, adapter_lr=1e-2),
    # for tests: seconds; trained hard enough that the 8 adapters' greedy outputs differ
    "tiny": DemoPreset(vocab=512, hidden=64, layers=2, heads=4, intermediate=128, base_steps=150,
                       adapter_steps=60, seq_len=64, batch=8, max_chars=20_000, base_lr=1e-2, adapter_lr=2e-2),
    # for plumbing tests (idempotency, CLI): a fraction of a second, outputs meaningless
    "smoke": DemoPreset(vocab=300, hidden=32, layers=1, heads=2, intermediate=64, base_steps=2, adapter_steps=2,
                        seq_len=32, batch=2, max_chars=5_000),
}

ProgressFn = Callable[[str, int, int], None]


def _windows(ids: torch.Tensor, *, seq_len: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """A batch of random token windows of length seq_len + 1 (inputs and shifted labels)."""
    if len(ids) <= seq_len + 1:
        reps = (seq_len + 2) // max(len(ids), 1) + 1
        ids = ids.repeat(reps)
    starts = torch.randint(0, len(ids) - seq_len - 1, (batch,), generator=gen)
    return torch.stack([ids[s : s + seq_len + 1] for s in starts.tolist()])  # [batch, seq_len + 1]


def _train(model: torch.nn.Module, ids: torch.Tensor, *, steps: int, lr: float, preset: DemoPreset, seed: int,
           label: str, progress: ProgressFn | None) -> tuple[float, float]:
    """A few AdamW steps of next-token prediction on `ids`; returns the loss on fixed windows before and after."""
    before = _eval_loss(model, ids, preset)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    # linear warmup, then cosine decay to 10%: lets a high peak rate converge in few steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * (s - warmup) /
                                                                                         max(1, steps - warmup))))
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for step in range(steps):
        x = _windows(ids, seq_len=preset.seq_len, batch=preset.batch, gen=gen)
        out = model(input_ids=x, labels=x)
        out.loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(out.loss.detach()))
        if progress is not None:
            progress(label, step + 1, steps)
    model.eval()
    logger.debug("%s: %d steps, train loss %s", label, steps, [round(x, 3) for x in losses])
    return before, _eval_loss(model, ids, preset)


def _eval_loss(model: torch.nn.Module, ids: torch.Tensor, preset: DemoPreset, batches: int = 4) -> float:
    """Mean next-token loss over fixed (seeded) windows of `ids`: the same windows before and after training."""
    gen = torch.Generator().manual_seed(12345)
    model.eval()
    total = 0.0
    with torch.no_grad():
        for _ in range(batches):
            x = _windows(ids, seq_len=preset.seq_len, batch=preset.batch, gen=gen)
            total += float(model(input_ids=x, labels=x).loss)
    return total / batches


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def read_manifest(demo_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The demo manifest if `demo_dir` holds a complete demo (every file present, ids matching), else None."""
    from inference.adapters.identity import adapter_id_of
    from inference.model import compute_model_id

    d = pathlib.Path(demo_dir)
    try:
        manifest = json.loads((d / MANIFEST_NAME).read_text(encoding="utf-8"))
        if manifest.get("version") != MANIFEST_VERSION:
            return None
        model_dir = d / manifest["model"]["path"]
        if _hex(compute_model_id(model_dir)) != manifest["model"]["model_id"]:
            return None
        for ad in manifest["adapters"]:
            if _hex(adapter_id_of(d / ad["path"])) != ad["adapter_id"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, InferenceError):
        return None
    return manifest


def init_demo(
    demo_dir: str | os.PathLike[str],
    *,
    n_adapters: int = 8,
    force: bool = False,
    preset: str = "demo",
    seed: int = 0,
    threads: int | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], bool]:
    """Build the demo base model, tokenizer and `n_adapters` trained adapters into `demo_dir`.

    Returns ``(manifest, built)``; `built` is False when a complete demo was already there (and `force` is off).
    The manifest is written last, atomically, so its presence means the demo is complete. `threads` sets torch's
    intra-op threads while building (restored afterwards); 1 is much faster on a machine whose cores are busy.
    """
    if preset not in PRESETS:
        raise DemoError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    if not 1 <= n_adapters <= len(ADAPTER_MODULES):
        raise DemoError(f"n_adapters={n_adapters} out of range: use 1..{len(ADAPTER_MODULES)} (one per stdlib "
                        "text); for load tests use `loraledger demo synth`")
    d = pathlib.Path(demo_dir)
    if not force:
        existing = read_manifest(d)
        if existing is not None and len(existing["adapters"]) >= n_adapters and existing.get("preset") == preset:
            logger.info("demo in %s is complete (manifest ids match); nothing to do (use --force to rebuild)", d)
            return existing, False
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    try:
        manifest = _build_demo(d, PRESETS[preset], preset=preset, n_adapters=n_adapters, seed=seed,
                               progress=progress)
    finally:
        torch.set_num_threads(previous_threads)
    return manifest, True


def _build_demo(d: pathlib.Path, p: DemoPreset, *, preset: str, n_adapters: int, seed: int,
                progress: ProgressFn | None) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model

    from inference.adapters.identity import adapter_id_of
    from inference.model import compute_model_id

    d.mkdir(parents=True, exist_ok=True)
    (d / MANIFEST_NAME).unlink(missing_ok=True)

    base_texts = [stdlib_docs(m, max_chars=p.max_chars) for m in BASE_MODULES]
    lic = python_license()
    if lic:
        base_texts.append(lic[: p.max_chars] if p.max_chars else lic)
    adapter_texts = {m: stdlib_docs(m, max_chars=p.max_chars) for m in ADAPTER_MODULES[:n_adapters]}
    tokenizer = train_tokenizer([*base_texts, *adapter_texts.values()], vocab_size=p.vocab)

    torch.manual_seed(seed)
    model = build_llama(tokenizer, hidden=p.hidden, layers=p.layers, heads=p.heads, intermediate=p.intermediate,
                        seed=seed, max_positions=2048)
    base_ids = torch.tensor(tokenizer("\n\n".join(base_texts))["input_ids"])
    base_loss0, base_loss = _train(model, base_ids, steps=p.base_steps, lr=p.base_lr, preset=p, seed=seed, label="base",
                       progress=progress)
    model_dir = d / MODEL_NAME
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model.save_pretrained(model_dir, safe_serialization=True)
    tokenizer.save_pretrained(model_dir)
    model_id = compute_model_id(model_dir)
    logger.info("demo base %s model_id=%s loss %.3f -> %.3f", MODEL_NAME, model_id.hex(), base_loss0, base_loss)

    model.requires_grad_(False)
    model.name_or_path = MODEL_NAME  # peft copies it into base_model_name_or_path (not a machine-specific path)
    adapters_root = d / "adapters"
    if adapters_root.exists():
        shutil.rmtree(adapters_root)
    entries: list[dict[str, Any]] = []
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    for i, (module, text) in enumerate(adapter_texts.items()):
        rank = 8 if i % 2 == 0 else 16
        name = f"{module}-docs"
        cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0,
                         task_type="CAUSAL_LM", base_model_name_or_path=MODEL_NAME)
        torch.manual_seed(seed + 1 + i)
        peft_model = get_peft_model(copy.deepcopy(model), cfg)
        ids = torch.tensor(tokenizer(text)["input_ids"])
        loss0, loss = _train(peft_model, ids, steps=p.adapter_steps, lr=p.adapter_lr, preset=p, seed=seed + 1 + i,
                      label=name, progress=progress)
        out = adapters_root / name
        peft_model.save_pretrained(str(out), safe_serialization=True)
        aid = adapter_id_of(out)
        entries.append({
            "name": name,
            "path": f"adapters/{name}",
            "adapter_id": _hex(aid),
            "rank": rank,
            "alpha": 2 * rank,
            "targets": targets,
            "dataset_id": _hex(dataset_id(text)),
            "dataset_description": f"docstrings of the Python {platform.python_version()} standard library "
                                   f"package `{module}` ({len(text)} characters)",
            "train_steps": p.adapter_steps,
            "loss_before": round(loss0, 4),
            "loss_after": round(loss, 4),
        })
        logger.info("demo adapter %s adapter_id=%s rank=%d loss %.3f -> %.3f", name, aid.hex(), rank, loss0, loss)

    manifest: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "preset": preset,
        "seed": seed,
        "model": {
            "name": MODEL_NAME,
            "path": MODEL_NAME,
            "model_id": _hex(model_id),
            "architecture": "llama",
            "hidden_size": p.hidden,
            "num_hidden_layers": p.layers,
            "num_attention_heads": p.heads,
            "intermediate_size": p.intermediate,
            "vocab_size": len(tokenizer),
            "train_steps": p.base_steps,
            "loss_before": round(base_loss0, 4),
            "loss_after": round(base_loss, 4),
            "dataset_id": _hex(dataset_id("\n\n".join(base_texts))),
            "dataset_description": "docstrings of the Python standard library packages "
                                   + ", ".join(BASE_MODULES) + " and Python's LICENSE.txt",
        },
        "adapters": entries,
    }
    _write_json_atomic(d / MANIFEST_NAME, manifest)
    return manifest


def _write_json_atomic(path: pathlib.Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------- demo synth


def _synth_seed(seed: int, i: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big") >> 1


def load_config(model_dir: str | os.PathLike[str]) -> Any:
    """The fields of a local model directory's config.json as attributes (what `linear_shapes` reads)."""
    d = pathlib.Path(model_dir)
    if not (d / "config.json").is_file():
        raise DemoError(f"{d} has no config.json: pass a model directory (e.g. .demo/demo-llama after "
                        "`loraledger demo init`)")
    try:
        raw = json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DemoError(f"{d}/config.json is unreadable ({e}): re-save the model") from e
    # a plain namespace: enough for the shapes, and no transformers import (seconds) on the synth path
    return types.SimpleNamespace(**raw)


def synth_adapters(
    out_dir: str | os.PathLike[str],
    n: int,
    base_config: Any,
    *,
    ranks: Sequence[int] = (16,),
    targets: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
    seed: int = 0,
    prefix: str = "synth",
    base: str = "",
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Write `n` synthetic adapters (seeded random A and B, peft layout) into `out_dir` for load tests.

    `base_config` is the base's transformers config or its model directory.
    Adapter i is ``<prefix>-<i:05d>`` with rank ``ranks[i % len(ranks)]``. Also writes ``out_dir/manifest.json``
    (name, path, adapter_id, rank, targets, seed) and returns it. Hashes in memory: no file is read back.
    """
    from safetensors.torch import save as save_bytes

    from inference.adapters.identity import adapter_id_from

    if n < 0 or not ranks or any(r <= 0 for r in ranks):
        raise DemoError(f"bad synth arguments n={n} ranks={list(ranks)}: use n >= 0 and positive ranks")
    unknown = [t for t in targets if t not in MODULE_ORDER]
    if unknown or not targets:
        raise DemoError(f"unknown target modules {unknown}: use some of {', '.join(MODULE_ORDER)}")
    if isinstance(base_config, str | os.PathLike):
        base = base or pathlib.Path(base_config).name
        base_config = load_config(base_config)
    root = pathlib.Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        rank = int(ranks[i % len(ranks)])
        s = _synth_seed(seed, i)
        tensors = random_lora_tensors(base_config, seed=s, rank=rank, targets=targets)
        cfg = lora_config_dict(rank=rank, alpha=2 * rank, targets=targets, base=base)
        raw = save_bytes(tensors, metadata={"format": "pt"})
        name = f"{prefix}-{i:05d}"
        ad = root / name
        ad.mkdir(exist_ok=True)
        (ad / CONFIG_NAME).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (ad / WEIGHTS_NAME).write_bytes(raw)
        entries.append({"name": name, "path": name, "adapter_id": _hex(adapter_id_from(cfg, raw)), "rank": rank,
                        "targets": sorted(targets), "seed": s})
        if progress is not None:
            progress("synth", i + 1, n)
    manifest = {"version": MANIFEST_VERSION, "synthetic": True, "seed": seed, "adapters": entries}
    _write_json_atomic(root / MANIFEST_NAME, manifest)
    return manifest
