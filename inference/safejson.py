"""JSON from outside the process (adapter_config.json files an admin points the node at), parsed with bounds.

`json.loads` recurses once per nesting level in C. web3 imports py_ecc, which raises Python's recursion limit to
100,000, so a body of 100,000 nested ``[`` overflows the C stack (SIGSEGV) before any RecursionError. `loads`
first measures the nesting depth without recursing and refuses anything deeper than `MAX_DEPTH`; it also refuses
integers longer than `MAX_INT_DIGITS` digits and strings holding a lone UTF-16 surrogate (``"\\ud800"``), which
would fail later as a 500 when encoded. Every refusal is a `JSONInputError` (a `ValueError`) saying what is wrong.

`attribution/safejson.py` is the same code (the inference package may not import attribution, DESIGN.md "Python
packages"); tests/unit/test_safejson.py runs both on one corpus so they cannot drift apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "JSONInputError", "json_depth", "loads"]

MAX_DEPTH = 64
MAX_INT_DIGITS = 100
# a JSON string: quote, then runs of plain characters and escapes (unrolled, so it never backtracks)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONInputError(ValueError):
    """Untrusted JSON was refused: not UTF-8, not JSON, nested too deep, an over-long integer or a lone surrogate."""


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in `text` (brackets inside strings ignored), without recursion."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return max(int(np.cumsum(steps).max()), 0)


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONInputError(f"an integer of {len(digits.lstrip('-'))} digits, more than the {MAX_INT_DIGITS} "
                             "allowed: send a shorter number")
    return int(digits)


def _constant(name: str) -> Any:
    raise JSONInputError(f"{name}, which is not JSON: send a finite number")


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH, what: str = "the JSON") -> Any:
    """Parse untrusted JSON; raises `JSONInputError` whose message names `what` and the problem."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONInputError(f"{what} is not valid UTF-8 (byte {e.start}): send UTF-8 JSON") from e
    else:
        text = data
    # more opening brackets than the limit is rare in real requests: only then is the depth measured
    depth = json_depth(text) if text.count("[") + text.count("{") > max_depth else 0
    if depth > max_depth:
        raise JSONInputError(f"{what} nests arrays/objects {depth} deep, more than the {max_depth} allowed: "
                             "send flatter JSON")
    try:
        obj = json.loads(text, parse_int=_int, parse_constant=_constant)
    except JSONInputError as e:
        raise JSONInputError(f"{what} holds {e}") from e
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise JSONInputError(f"{what} is not valid JSON ({e}): send well-formed JSON") from e
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise JSONInputError(f"{what} holds a lone UTF-16 surrogate escape (such as \\ud800) that is not a "
                                 "character: send valid Unicode text") from e
    return obj
