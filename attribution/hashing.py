"""Keccak-256 and EIP-55 addresses: the one implementation of each that every part of `attribution` uses.

`native_kernels()` is the optional C extension `attribution._keccak` (many messages hashed side by side with the
GIL released); without it the same bytes come from numpy + safe-pysha3. Tests switch it off through `_native`.
"""

from __future__ import annotations

import functools
from typing import Any

import sha3
from eth_typing import ChecksumAddress, HexAddress, HexStr

try:  # built by `pip install -e .` when a C compiler is present (optional extension)
    import attribution._keccak as _native
except ImportError:  # pragma: no cover - depends on the build; the numpy + safe-pysha3 path gives the same bytes
    _native = None  # type: ignore[assignment]

__all__ = ["keccak256", "to_checksum_address", "is_address", "native_kernels"]

_keccak = sha3.keccak_256


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not SHA3-256) of `data`, from the C implementation in safe-pysha3."""
    return _keccak(data).digest()


def native_kernels() -> Any:
    """The C extension `attribution._keccak`, or None when it was not built (then the numpy path is used)."""
    return _native


def to_checksum_address(address: bytes | str) -> ChecksumAddress:
    """EIP-55 mixed-case hex of an address given as 20 bytes or as hex (any case, with or without 0x).

    Raises ValueError for anything that is not 20 bytes. The case of a hex input is not checked (web3's
    `to_checksum_address` neither): use `is_address` first on what a person typed.
    """
    if isinstance(address, str):
        text = address[2:] if address[:2] in ("0x", "0X") else address
        try:
            raw = bytes.fromhex(text)
        except ValueError as e:
            raise ValueError(f"not an address: {address!r} (expected 20 bytes as 0x-hex)") from e
    elif isinstance(address, bytes | bytearray | memoryview):
        raw = bytes(address)
    else:  # bytes(20) of an int would be the zero address
        raise ValueError(f"not an address: {type(address).__name__} {address!r:.80}")
    if len(raw) != 20:
        raise ValueError(f"not an address: {len(raw)} bytes, expected 20")
    return _checksum(raw)


def is_address(value: object) -> bool:
    """True for 20 bytes, or for 40 hex digits (`0x` optional) in any case: what eth_utils' (web3's) `is_address`
    accepts, which does not check a mixed case against the checksum either."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value) == 20
    if not isinstance(value, str):
        return False
    text = value[2:] if value[:2] in ("0x", "0X") else value
    if len(text) != 40:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4096)  # a node renders the same few addresses (itself, its ledger) on every answer
def _checksum(address: bytes) -> ChecksumAddress:
    hex_addr = address.hex()
    h = keccak256(hex_addr.encode()).hex()
    mixed = "".join(c.upper() if int(h[i], 16) >= 8 else c for i, c in enumerate(hex_addr))
    return ChecksumAddress(HexAddress(HexStr("0x" + mixed)))
