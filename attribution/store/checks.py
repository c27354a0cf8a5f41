"""The checks the record store runs before it writes a value, and the repair of values an old API wrote.

Every boundary that stores data checks types and ranges first: nothing a caller passes may leave the store
unreadable (a hex string in a BLOB column once made every read fail; `repair_blob` reads what is left of those).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attribution.store.errors import StoreTypeError

__all__ = ["I64_MAX", "check_bytes", "check_int", "repair_blob"]

I64_MAX = (1 << 63) - 1


def check_int(value: Any, name: str) -> None:
    """Refuse what is not a plain int (bool and float included) or does not fit SQLite's INTEGER."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise StoreTypeError(f"{name} must be an int, got {type(value).__name__} {value!r:.80}")
    if not 0 <= int(value) <= I64_MAX:
        raise StoreTypeError(f"{name} must be in [0, 2^63), got {value}")


def check_bytes(value: Any, name: str, size: int | None = None) -> None:
    """Refuse what is not raw bytes of the right size; 0x-hex strings are named as such (use bytes.fromhex)."""
    if value is None:
        return
    if isinstance(value, str):
        raise StoreTypeError(f"{name} must be raw bytes, got a str ({value[:12]!r}...); pass "
                             f"bytes.fromhex({name}.removeprefix('0x'))")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise StoreTypeError(f"{name} must be bytes, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise StoreTypeError(f"{name} must be {size} bytes, got {len(value)}")


def repair_blob(value: Any) -> bytes | None:
    """Read a BLOB column; a 0x-hex TEXT left by the schema-1 API becomes its bytes instead of failing reads."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return None
