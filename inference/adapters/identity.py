"""Content identities of adapters (`adapterId`, DESIGN.md "Identities").

Byte layout hashed (documented in docs/inference.md)::

    adapterId = sha256( canonical_json(adapter_config.json) || bytes(adapter_model.safetensors) )

`canonical_json` parses the config file and re-serialises it with keys sorted at every level, no whitespace
(separators ``,`` and ``:``), non-ASCII characters kept as UTF-8 (not ``\\u`` escaped), NaN/Infinity refused; the
result is UTF-8 encoded. The safetensors file is hashed byte for byte as stored. A JSON text always ends in ``}``
and a safetensors file starts with its 8-byte header length, so the concatenation needs no separator.
Whitespace or key order changes in the config keep the id; any changed value or tensor byte gives a new id.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any

from inference import safejson
from inference.adapters.errors import AdapterConfigInvalid, AdapterNotFound, AdapterNotSafetensors

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PICKLE_WEIGHTS_NAME = "adapter_model.bin"
_CHUNK = 1 << 20

CONVERT_HINT = (
    "convert it once with: python -c \"import torch, safetensors.torch as st; "
    "st.save_file(torch.load('adapter_model.bin', weights_only=True), 'adapter_model.safetensors')\" "
    "(or load it with peft and call save_pretrained(dir, safe_serialization=True)), then remove the .bin"
)


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8, NaN/Infinity refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def read_config(adapter_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse `adapter_config.json` of an adapter directory; raises the named errors if absent or not a JSON object."""
    d = pathlib.Path(adapter_dir)
    if not d.is_dir():
        raise AdapterNotFound(f"adapter directory {d} does not exist: pass a peft adapter directory "
                              f"(holding {CONFIG_NAME} and {WEIGHTS_NAME})", adapter=str(d))
    cfg_path = d / CONFIG_NAME
    if not cfg_path.is_file():
        raise AdapterConfigInvalid(f"{d} has no {CONFIG_NAME}: save the adapter with peft's save_pretrained",
                                   adapter=str(d))
    try:
        # depth-bounded: a deeply nested file would overflow the C stack in json.loads (see inference/safejson)
        cfg = safejson.loads(cfg_path.read_bytes(), what=str(cfg_path))
    except safejson.JSONInputError as e:
        raise AdapterConfigInvalid(f"{e}; fix or re-save the adapter", adapter=str(d)) from e
    except OSError as e:
        raise AdapterConfigInvalid(f"{cfg_path} cannot be read ({e}): check its permissions", adapter=str(d)) from e
    if not isinstance(cfg, dict):
        raise AdapterConfigInvalid(f"{cfg_path} must hold a JSON object, got {type(cfg).__name__}", adapter=str(d))
    return cfg


def weights_path(adapter_dir: str | os.PathLike[str]) -> pathlib.Path:
    """Path of the adapter's safetensors file; refuses pickle-only adapters with a message telling how to convert."""
    d = pathlib.Path(adapter_dir)
    p = d / WEIGHTS_NAME
    if p.is_file():
        return p
    if (d / PICKLE_WEIGHTS_NAME).is_file():
        raise AdapterNotSafetensors(
            f"{d} holds {PICKLE_WEIGHTS_NAME} (pickle), which is never loaded because unpickling runs code; "
            + CONVERT_HINT, adapter=str(d))
    raise AdapterNotSafetensors(f"{d} has no {WEIGHTS_NAME}: save the adapter with peft's "
                                "save_pretrained(dir, safe_serialization=True)", adapter=str(d))


def adapter_id_from(config: dict[str, Any], safetensors_bytes: bytes) -> bytes:
    """The adapterId of an adapter given its parsed config and its safetensors file bytes."""
    h = hashlib.sha256(canonical_json(config))
    h.update(safetensors_bytes)
    return h.digest()


def adapter_id_of(adapter_dir: str | os.PathLike[str]) -> bytes:
    """The 32-byte adapterId of a peft adapter directory (streams the weights file; does not validate tensors)."""
    cfg = read_config(adapter_dir)
    wp = weights_path(adapter_dir)
    h = hashlib.sha256(canonical_json(cfg))
    with open(wp, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def parse_id(text: str) -> bytes | None:
    """Parse a 32-byte hex id (with or without ``0x``); None if `text` is not one."""
    t = text[2:] if text[:2].lower() == "0x" else text
    if len(t) != 64:
        return None
    try:
        return bytes.fromhex(t)
    except ValueError:
        return None
