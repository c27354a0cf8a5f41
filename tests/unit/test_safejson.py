"""The depth-bounded JSON parser (attribution/safejson.py and its copy inference/safejson.py) on one corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import attribution.safejson as a_json
import inference.safejson as i_json

BOTH = [a_json, i_json]
DEEP = "[" * 100_000 + "]" * 100_000

REFUSED = {
    "deep_array": DEEP,
    "deep_object": '{"a":' * 5_000 + "1" + "}" * 5_000,
    "deep_inside_valid_object": '{"model":"m","prompt":' + "[" * 65 + "]" * 65 + "}",
    "huge_int": '{"max_tokens": ' + "9" * 5_000 + "}",
    "lone_surrogate": '{"prompt": "\\ud800"}',
    "lone_low_surrogate": '["\\udc00x"]',
    "nan": "[NaN]",
    "not_json": "{",
    "not_utf8": b'{"a": "\xff"}',
}
ACCEPTED = {
    "brackets_in_strings": ('{"p": "' + "[" * 1000 + '"}', {"p": "[" * 1000}),
    "escaped_quote_then_brackets": ('{"p": "\\"[[[[", "q": [1]}', {"p": '"[[[[', "q": [1]}),
    "depth_64": ("[" * 64 + "]" * 64, json.loads("[" * 64 + "]" * 64)),
    "surrogate_pair": ('"\\ud83d\\ude00"', "\U0001F600"),
    "escaped_backslash_u": ('"\\\\ud800"', "\\ud800"),
    "big_but_fine_int": ("12345678901234567890", 12345678901234567890),
}


@pytest.mark.parametrize("mod", BOTH, ids=lambda m: m.__name__)
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(mod: ModuleType, name: str) -> None:
    with pytest.raises(mod.JSONInputError) as e:
        mod.loads(REFUSED[name], what="the body")
    assert str(e.value).startswith("the body")


@pytest.mark.parametrize("mod", BOTH, ids=lambda m: m.__name__)
@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted(mod: ModuleType, name: str) -> None:
    text, want = ACCEPTED[name]
    assert mod.loads(text) == want


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=30))
def test_same_as_json_loads_below_the_bounds(obj: object) -> None:
    text = json.dumps(obj)
    for mod in BOTH:
        assert mod.loads(text) == json.loads(text)
        assert mod.json_depth(text) <= 64


def test_the_copies_are_the_same_code() -> None:
    import inspect

    def body(mod: ModuleType) -> str:
        src = inspect.getsource(mod)
        return src[src.index('"""', 3):]  # everything after the module docstring

    assert body(a_json) == body(i_json)


def test_deep_body_does_not_crash_a_process_with_web3_loaded() -> None:
    """py_ecc (through web3) raises the recursion limit to 100,000: plain json.loads of DEEP then dies of SIGSEGV."""
    code = ("import web3, sys, attribution.safejson as s\n"
            "assert sys.getrecursionlimit() >= 100000\n"
            "try:\n    s.loads('[' * 100000 + ']' * 100000)\nexcept s.JSONInputError:\n    print('refused')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "refused"
