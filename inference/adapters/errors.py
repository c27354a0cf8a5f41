"""Named adapter errors: every way an adapter can be refused, each saying what to fix.

All derive from `AdapterError` (itself an `InferenceError`) and carry a built-in mix-in where one fits, so callers
may catch `LookupError`/`ValueError` without importing this module. Every error keeps the offending adapter's
`path` (or name) in `.adapter` for logs and API error bodies.
"""

from __future__ import annotations

from inference.errors import InferenceError


class AdapterError(InferenceError):
    """Root of every adapter error (loading, validation, lookup)."""

    def __init__(self, message: str, *, adapter: str = "") -> None:
        super().__init__(message)
        self.adapter = adapter


class AdapterNotFound(AdapterError, LookupError):
    """No adapter by that name, id or path: check the catalogue directory or the path given."""


class AdapterNotSafetensors(AdapterError, ValueError):
    """The adapter ships pickle weights (`adapter_model.bin`) or none at all; only safetensors is accepted."""


class AdapterConfigInvalid(AdapterError, ValueError):
    """`adapter_config.json` is missing, not JSON, or has an impossible value (peft_type, r, lora_alpha, ...)."""


class AdapterUnsupportedFeature(AdapterError, ValueError):
    """The adapter uses a peft feature this engine does not serve (DoRA, LoRA bias, modules_to_save, ...).

    `.feature` names it (e.g. ``"use_dora"``) so that clients can tell which one to drop.
    """

    def __init__(self, message: str, *, feature: str, adapter: str = "") -> None:
        super().__init__(message, adapter=adapter)
        self.feature = feature


class AdapterRankTooLarge(AdapterError, ValueError):
    """The adapter's rank exceeds the node's `max_rank`: retrain with a smaller `r` or raise the cap."""

    def __init__(self, message: str, *, rank: int, max_rank: int, adapter: str = "") -> None:
        super().__init__(message, adapter=adapter)
        self.rank = rank
        self.max_rank = max_rank


class AdapterTargetModuleUnknown(AdapterError, ValueError):
    """A LoRA tensor targets a module or layer the base model does not have (wrong base model or key names)."""


class AdapterShapeMismatch(AdapterError, ValueError):
    """A lora_A/lora_B tensor's shape does not fit the base layer's in/out features or the adapter's rank."""


class AdapterTooLarge(AdapterError, ValueError):
    """The adapter's weight file exceeds the node's size limit (`max_bytes`)."""

    def __init__(self, message: str, *, nbytes: int, max_bytes: int, adapter: str = "") -> None:
        super().__init__(message, adapter=adapter)
        self.nbytes = nbytes
        self.max_bytes = max_bytes


class AdapterWeightsInvalid(AdapterError, ValueError):
    """The safetensors file is unreadable, a lora_A/lora_B pair is incomplete, or a tensor is not finite floats."""


class AdapterContentChanged(AdapterError, ValueError):
    """The adapter's files on disk no longer hash to the id it was added (and registered) under: swapped or edited
    after it was added. It is refused until it is removed and added again (and registered, if its id changed)."""
