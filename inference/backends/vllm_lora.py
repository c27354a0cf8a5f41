"""The adapters the vLLM backend serves: one `LoRARequest` per adapter, a stable integer id per content hash, and the
checks that refuse at add time what vLLM cannot take (so a bad adapter never reaches vLLM's worker, where a load
error fails the requests that asked for it).

vLLM loads an adapter on first use from `LoRARequest.lora_path` (into `max_cpu_loras` host slots, then `max_loras`
device slots, both LRU); the path given is the read-only, content-addressed copy (`inference.adapters.store`), so
the bytes vLLM loads are the bytes whose hash the node checked.
"""

from __future__ import annotations

import pathlib
import threading
from dataclasses import dataclass
from typing import Any

from inference.adapters.identity import parse_id, read_config
from inference.adapters.store import ContentStore
from inference.adapters.weights import load_adapter
from inference.api import (
    AdapterInfo,
    AdapterNameTaken,
    AdapterNotFound,
    AdapterRankTooLarge,
    AdapterUnsupportedFeature,
)

__all__ = ["VLLM_LORA_MODULES", "ZERO_LORA_ID", "VllmAdapters", "lora_int_id", "write_zero_adapter"]

# The linear layers vLLM's Llama-family models take LoRA on (its packed qkv_proj / gate_up_proj split back into
# peft's names); embeddings and lm_head need vLLM's extra vocabulary support, which this backend does not turn on.
VLLM_LORA_MODULES = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
ZERO_LORA_ID = 0x7FFFFFFF  # the all-zero adapter of base rows (`write_zero_adapter`); never given to an adapter


def lora_int_id(content_hash: bytes, taken: set[int]) -> int:
    """vLLM's integer adapter id for a content hash: its first 31 bits (never 0), the next free one on a collision.
    The same adapter gets the same id in every process, so vLLM's logs and its per-id caches name it stably."""
    i = int.from_bytes(content_hash[:4], "big") & 0x7FFFFFFF or 1
    while i in taken or i == ZERO_LORA_ID:
        i = i % 0x7FFFFFFF + 1
    return i


def write_zero_adapter(root: pathlib.Path, base_config: Any) -> pathlib.Path:
    """A rank-1 adapter (fits any max_lora_rank) on q_proj whose A and B are zeros: its delta is exactly 0.0, so a
    row that uses it computes the base model. The vLLM backend on CPU routes base rows through it (`VllmEngine`)."""
    import torch

    from inference.adapters.weights import linear_shapes
    from inference.demo import lora_config_dict, write_adapter_dir

    d = root / "base-zero-lora"
    if (d / "adapter_model.safetensors").is_file():
        return d
    fin, fout = linear_shapes(base_config)["q_proj"]
    tensors = {}
    for layer in range(int(base_config.num_hidden_layers)):
        key = f"base_model.model.model.layers.{layer}.self_attn.q_proj"
        tensors[f"{key}.lora_A.weight"] = torch.zeros(1, fin)
        tensors[f"{key}.lora_B.weight"] = torch.zeros(fout, 1)
    return write_adapter_dir(d, lora_config_dict(rank=1, alpha=1, targets=["q_proj"]), tensors)


@dataclass
class _Adapter:
    content_hash: bytes
    name: str
    path: pathlib.Path  # the content-addressed copy
    int_id: int
    rank: int
    disk_bytes: int
    refs: int = 0
    hits: int = 0
    tokens: int = 0
    pinned: bool = False
    removing: bool = False

    def lora_request(self) -> Any:
        from vllm.lora.request import LoRARequest

        # the name is the content hash: vLLM compares LoRARequests by name
        return LoRARequest(lora_name=self.content_hash.hex(), lora_int_id=self.int_id, lora_path=str(self.path))


class VllmAdapters:
    """Served adapters by content hash and name; references of in-flight requests keep a removed one's copy."""

    def __init__(self, store: ContentStore, base_config: Any, max_lora_rank: int) -> None:
        self.store = store
        self.base_config = base_config
        self.max_lora_rank = max_lora_rank
        self._lock = threading.Lock()
        self._by_hash: dict[bytes, _Adapter] = {}
        self._names: dict[str, bytes] = {}

    def check(self, path: pathlib.Path, name: str) -> None:
        """Refuse an adapter vLLM cannot serve, naming the limit and the setting that raises it."""
        cfg = read_config(path)
        rank = cfg.get("r")
        if isinstance(rank, int) and rank > self.max_lora_rank:
            raise AdapterRankTooLarge(
                f"adapter {name} has rank {rank}, above the vLLM backend's max_lora_rank {self.max_lora_rank}: raise "
                "engine.max_lora_rank (vLLM allows 1, 8, 16, 32, 64, 128, 256, 320, 512; every LoRA slot reserves "
                "memory for that rank) or serve an adapter trained with a smaller r", rank=rank,
                max_rank=self.max_lora_rank, adapter=name)
        targets = cfg.get("target_modules")
        listed = [targets] if isinstance(targets, str) else list(targets or [])
        odd = sorted(t for t in listed if isinstance(t, str) and t.split(".")[-1] not in VLLM_LORA_MODULES)
        if odd:
            raise AdapterUnsupportedFeature(
                f"adapter {name} targets {', '.join(odd)}, which the vLLM backend does not take LoRA on (it takes "
                f"{', '.join(sorted(VLLM_LORA_MODULES))}): retrain without those target_modules, or serve it with "
                "engine.backend = \"loraledger\"", feature="target_modules", adapter=name)

    def add(self, content_hash: bytes, path: pathlib.Path, name: str) -> _Adapter:
        """Check, copy (content-addressed, read-only), validate the copy's tensors, register; returns the entry."""
        with self._lock:
            if name in self._names:
                raise AdapterNameTaken(f"adapter name {name!r} is already used by 0x{self._names[name].hex()}: "
                                       "remove that adapter or add this one under another name", adapter=name)
            old = self._by_hash.get(content_hash)
            if old is not None and not old.removing:
                raise AdapterNameTaken(f"these adapter files are already served as {old.name!r}: use that name",
                                       adapter=name)
        self.check(path, name)
        copy = self.store.put(path, content_hash)
        # every tensor's shape, dtype and finiteness against the base model, with our named errors
        w = load_adapter(copy, self.base_config, max_rank=self.max_lora_rank, name=name)
        with self._lock:
            old = self._by_hash.get(content_hash)
            if old is not None:  # re-added while its removal waited for in-flight requests: take it back
                old.removing, old.name = False, name
                self._names[name] = content_hash
                return old
            taken = {a.int_id for a in self._by_hash.values()}
            disk = sum(p.stat().st_size for p in copy.iterdir())
            a = _Adapter(content_hash, name, copy, lora_int_id(content_hash, taken), w.rank, disk)
            self._by_hash[content_hash] = a
            self._names[name] = content_hash
            return a

    def remove(self, content_hash: bytes) -> _Adapter | None:
        """Hide it from new requests; returns the entry when nothing uses it any more (the caller frees it)."""
        with self._lock:
            a = self._by_hash.get(content_hash)
            if a is None or a.removing:
                return None
            a.removing = True
            self._names.pop(a.name, None)
            if a.refs:
                return None
            del self._by_hash[content_hash]
        self.store.drop(content_hash)
        return a

    def acquire(self, name_or_id: str | bytes) -> _Adapter:
        """A request will use it: count a reference; raises AdapterNotFound."""
        with self._lock:
            key = name_or_id if isinstance(name_or_id, bytes) else (self._names.get(name_or_id)
                                                                    or parse_id(name_or_id))
            a = self._by_hash.get(key) if key is not None else None
            if a is None or a.removing:
                shown = name_or_id if isinstance(name_or_id, str) else "0x" + name_or_id.hex()
                raise AdapterNotFound(f"no adapter {shown!r} on this node: add it first (POST /v1/adapters) or "
                                      "check the name", adapter=shown)
            a.refs += 1
            a.hits += 1
            return a

    def release(self, a: _Adapter, tokens: int) -> bool:
        """A request ended; True when it was the last user of a removed adapter (now freed)."""
        with self._lock:
            a.refs -= 1
            a.tokens += tokens
            if not (a.removing and a.refs == 0 and self._by_hash.get(a.content_hash) is a):
                return False
            del self._by_hash[a.content_hash]
        self.store.drop(a.content_hash)
        return True

    def get(self, content_hash: bytes) -> _Adapter | None:
        """The live entry, or None."""
        with self._lock:
            a = self._by_hash.get(content_hash)
            return a if a is not None and not a.removing else None

    def info(self, a: _Adapter) -> AdapterInfo:
        """vLLM keeps its own host and device LRU tiers and does not report them: the tier reads "vllm"."""
        return AdapterInfo(adapter_id=a.content_hash, name=a.name, tier="vllm", path=a.path, rank=a.rank,
                           host_bytes=0, device_bytes=0, disk_bytes=a.disk_bytes, pinned=a.pinned, refs=a.refs,
                           hits=a.hits, tokens=a.tokens, load_ms=None, device_ms=None)

    def list(self) -> list[_Adapter]:
        """Every live entry."""
        with self._lock:
            return [a for a in self._by_hash.values() if not a.removing]
