"""Custom Solidity errors decoded into Python exceptions, one class per error name, from the contracts' ABIs.

Every custom error declared in a contract ABI maps to one Python class named like the Solidity error
(`LedgerSeqGap`), a subclass of `ContractRevert` (itself a `ChainError` under `AttributionError`). An instance
carries the decoded arguments: `.args_by_name == {"expected": 3, "got": 5}`, plus `.selector` and `.signature`.

Classes are made once per error name, from the ABIs, the first time they are needed:
`reverts.error_class("LedgerSeqGap")` or simply `from attribution.chain.reverts import LedgerSeqGap` (module
`__getattr__` loads the ABIs under `out/`). `decode_revert(data)` turns raw revert data into the right exception;
`Error(string)` and `Panic(uint256)` become `RevertedWithReason` and `Panicked`; unknown selectors `UnknownRevert`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from attribution.chain.artifacts import ArtifactStore
from attribution.chain.errors import ContractRevert, Panicked, RevertedWithReason, UnknownRevert
from attribution.hashing import keccak256, to_checksum_address

# Built-in mix-ins for generated classes, chosen from words in the Solidity name (first match wins).
_MIXINS: tuple[tuple[tuple[str, ...], type[Exception]], ...] = (
    (("Unauthorized", "NotOwner", "NotAuthorized", "OnlyOwner", "NotNode", "NotPoster", "NotGuardian",
      "NotGovernance", "AccessControl", "Forbidden", "NotActive", "Inactive"), PermissionError),
    (("NotFound", "Unknown", "Missing", "DoesNotExist", "NotRegistered", "Nonexistent"), LookupError),
    (("Insufficient", "Invalid", "Mismatch", "Gap", "Zero", "Empty", "TooLarge", "TooMany", "TooSmall", "Exceeds",
      "Length", "Sum", "Bps"), ValueError),
)


def _mixin_for(name: str) -> type[Exception] | None:
    for words, mixin in _MIXINS:
        if any(w in name for w in words):
            return mixin
    return None


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type string of an ABI parameter (tuples expanded: `(uint256,address)[]`)."""
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param.get("components", []))
        return f"({inner}){typ[len('tuple'):]}"
    return typ


def error_signature(entry: Mapping[str, Any]) -> str:
    """`Name(type1,type2)` of an ABI error entry."""
    return f"{entry['name']}({','.join(abi_type(p) for p in entry.get('inputs', []))})"


def selector_of(signature: str) -> bytes:
    """The 4-byte selector of a signature."""
    return keccak256(signature.encode())[:4]


def _normalize(typ: str, value: Any) -> Any:
    """Addresses as EIP-55 checksum strings (eth_abi gives lowercase), arrays and tuples as lists."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        return [_normalize(inner, v) for v in value]
    if typ == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if isinstance(value, tuple | list):
        return list(value)
    return value


class _ErrorSpec:
    __slots__ = ("name", "signature", "selector", "arg_names", "arg_types")

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.name = str(entry["name"])
        self.signature = error_signature(entry)
        self.selector = selector_of(self.signature)
        inputs = entry.get("inputs", [])
        self.arg_names = [str(p.get("name") or f"arg{i}") for i, p in enumerate(inputs)]
        self.arg_types = [abi_type(p) for p in inputs]


class ErrorRegistry:
    """Selector -> error spec, name -> exception class. One process-wide instance: `registry()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[bytes, _ErrorSpec] = {}
        self._classes: dict[str, type[ContractRevert]] = {}
        self._loaded_default = False
        for entry, cls in (({"name": "Error", "inputs": [{"name": "reason", "type": "string"}]}, RevertedWithReason),
                           ({"name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]}, Panicked)):
            spec = _ErrorSpec(entry)
            self._specs[spec.selector] = spec
            self._classes[spec.name] = cls

    def add_abi(self, abi: Iterable[Mapping[str, Any]]) -> None:
        """Register every custom error of an ABI (idempotent; same name with other arguments is fine)."""
        with self._lock:
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                spec = _ErrorSpec(entry)
                self._specs.setdefault(spec.selector, spec)
                if spec.name not in self._classes:
                    self._classes[spec.name] = _make_class(spec.name)

    def load_default(self) -> None:
        """Register the errors of every artifact under the repository's `out/` (once; no-op when absent)."""
        if self._loaded_default:
            return
        store = ArtifactStore()
        if store.out_dir.is_dir():
            for artifact in store.all(include_tests=False):
                self.add_abi(artifact.abi)
        self._loaded_default = True

    def error_class(self, name: str) -> type[ContractRevert]:
        """The exception class for Solidity error `name` (loads `out/` ABIs first if needed)."""
        if name not in self._classes:
            self.load_default()
        try:
            return self._classes[name]
        except KeyError:
            raise LookupError(f"no custom error {name!r} in the loaded ABIs; run `forge build` or check the name") \
                from None

    def classes(self) -> dict[str, type[ContractRevert]]:
        """A copy of name -> class for every registered error."""
        return dict(self._classes)

    def signatures(self) -> dict[bytes, str]:
        """selector -> signature for every registered error."""
        return {sel: spec.signature for sel, spec in self._specs.items()}

    def decode(self, data: bytes | str | None) -> ContractRevert:
        """Decode revert data into the matching exception instance (never raises)."""
        raw = _to_bytes(data)
        if len(raw) < 4:
            return UnknownRevert("execution reverted without data", data=raw)
        selector = raw[:4]
        spec = self._specs.get(selector)
        if spec is None and not self._loaded_default:
            self.load_default()
            spec = self._specs.get(selector)
        if spec is None:
            return UnknownRevert(f"execution reverted with unknown error 0x{selector.hex()} (data 0x{raw.hex()}); "
                                 "is the ABI of the called contract loaded?", selector=selector, data=raw)
        try:
            values = abi_decode(spec.arg_types, raw[4:]) if spec.arg_types else ()
        except (DecodingError, ValueError, OverflowError) as e:
            return UnknownRevert(f"{spec.signature} with undecodable arguments (data 0x{raw.hex()}): {e}",
                                 selector=selector, signature=spec.signature, data=raw)
        args = {n: _normalize(t, v) for n, t, v in zip(spec.arg_names, spec.arg_types, values, strict=True)}
        cls = self._classes.get(spec.name) or _make_class(spec.name)
        shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
        return cls(f"{spec.name}({shown})", selector=selector, signature=spec.signature, args_by_name=args, data=raw)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _to_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    text = data[2:] if data.startswith(("0x", "0X")) else data
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


def _make_class(name: str) -> type[ContractRevert]:
    mixin = _mixin_for(name)
    bases: tuple[type, ...] = (ContractRevert, mixin) if mixin is not None else (ContractRevert,)
    doc = f"Solidity custom error `{name}` (decoded arguments in `.args_by_name`)."
    cls = type(name, bases, {"__doc__": doc, "error_name": name, "__module__": __name__})
    return cls


_REGISTRY = ErrorRegistry()


def registry() -> ErrorRegistry:
    """The process-wide error registry."""
    return _REGISTRY


def error_class(name: str) -> type[ContractRevert]:
    """The exception class of Solidity custom error `name` (`error_class("LedgerSeqGap")`)."""
    return _REGISTRY.error_class(name)


def decode_revert(data: bytes | str | None, abis: Sequence[Iterable[Mapping[str, Any]]] = ()) -> ContractRevert:
    """Raw revert data -> the matching `ContractRevert` subclass instance, registering `abis` first."""
    for abi in abis:
        _REGISTRY.add_abi(abi)
    return _REGISTRY.decode(data)


def __getattr__(name: str) -> type[ContractRevert]:
    # `from attribution.chain.reverts import LedgerSeqGap`: generated classes on demand (PEP 562).
    if name[:1].isupper():
        try:
            return _REGISTRY.error_class(name)
        except LookupError as e:
            raise AttributeError(str(e)) from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
