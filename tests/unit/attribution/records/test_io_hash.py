"""F6: ioHash v3 = keccak256(abi.encode(uint8 kind, bytes32 salt, bytes32 keccak256(prompt), bytes32
keccak256(completion))). A salt holder can no longer move bytes between prompt and completion or relabel a chat
answer as a completion; answers from before v3 (no `io_hash_version`) still verify by the v1 rule."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import eth_abi
import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from attribution.hashing import keccak256
from attribution.records import (
    IO_KIND_CHAT,
    IO_KIND_COMPLETION,
    Record,
    RecordValidationError,
    io_hash,
    io_hash_v3,
)
from attribution.records.receipt import prompt_bytes, sign_receipt
from attribution.verify.answers import AnswerError, check_answer_offline, load_answer

SALT = bytes(range(32))


def test_v3_is_the_abi_encoding_of_kind_salt_and_part_hashes() -> None:
    want = keccak256(eth_abi.encode(["uint8", "bytes32", "bytes32", "bytes32"],
                                    [2, SALT, keccak256("héllo".encode()), keccak256(b"world")]))
    assert io_hash_v3(IO_KIND_CHAT, SALT, "héllo", b"world") == want
    with pytest.raises(RecordValidationError, match="kind"):
        io_hash_v3(3, SALT, "a", "b")
    with pytest.raises(RecordValidationError, match="salt"):
        io_hash_v3(IO_KIND_COMPLETION, b"short", "a", "b")


@given(st.binary(min_size=1, max_size=64), st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_moving_bytes_between_prompt_and_completion_changes_v3_only(prompt: bytes, completion: bytes,
                                                                    cut: int) -> None:
    cut = min(cut, len(prompt))
    moved_p, moved_c = prompt[:-cut], prompt[-cut:] + completion
    assert io_hash(SALT, prompt, completion) == io_hash(SALT, moved_p, moved_c)  # the v1 flaw
    assert io_hash_v3(IO_KIND_COMPLETION, SALT, prompt, completion) != io_hash_v3(IO_KIND_COMPLETION, SALT,
                                                                                  moved_p, moved_c)
    assert io_hash_v3(IO_KIND_COMPLETION, SALT, prompt, completion) != io_hash_v3(IO_KIND_CHAT, SALT, prompt,
                                                                                  completion)


def _answer(version: int, prompt: str = "What is 2+2?", text: str = "4, of course.") -> dict[str, Any]:
    node = Account.create()
    salt = secrets.token_bytes(32)
    pb = prompt_bytes(prompt=prompt)
    io = io_hash_v3(IO_KIND_COMPLETION, salt, pb, text) if version == 3 else io_hash(salt, pb, text)
    record = Record(31337, b"\x11" * 20, bytes.fromhex(node.address[2:]), 7, b"\x01" * 32, b"\x00" * 32, (), (),
                    5, 4, 1_760_000_000, io)
    att: dict[str, Any] = {"seq": 7, "node": node.address, "record": record.to_json(),
                           "leaf": "0x" + record.leaf().hex(), "salt": "0x" + salt.hex(),
                           "receipt": "0x" + sign_receipt(record, node.key).hex()}
    if version == 3:
        att["io_hash_version"] = 3
    return {"request": {"model": "m", "prompt": prompt},
            "response": {"choices": [{"index": 0, "text": text}], "attribution": att}}


def _io_step(saved: dict[str, Any]) -> tuple[bool | None, str]:
    report = check_answer_offline(load_answer(saved))
    step = next(s for s in report.steps if s.name == "ioHash")
    return step.passed, step.detail


def _moved(saved: dict[str, Any]) -> dict[str, Any]:
    """The salt holder's forgery: the prompt's tail moved into the completion."""
    forged = copy.deepcopy(saved)
    forged["request"]["prompt"] = "What is 2"
    forged["response"]["choices"][0]["text"] = "+2?4, of course."
    return forged


def test_v3_answer_verifies_and_forgeries_do_not() -> None:
    saved = _answer(3)
    passed, detail = _io_step(saved)
    assert passed is True and detail.startswith("v3")
    assert _io_step(_moved(saved))[0] is False
    as_chat = copy.deepcopy(saved)  # relabelled as a chat answer with the same bytes
    as_chat["request"] = {"model": "m", "messages": [{"role": "user", "content": "What is 2+2?"}]}
    assert _io_step(as_chat)[0] is False
    downgraded = copy.deepcopy(saved)  # claimed to be a v1 record
    del downgraded["response"]["attribution"]["io_hash_version"]
    assert _io_step(downgraded)[0] is False


def test_v1_answers_stay_verifiable_and_say_so() -> None:
    saved = _answer(1)
    passed, detail = _io_step(saved)
    assert passed is True and detail.startswith("v1 (legacy)")
    assert _io_step(_moved(saved))[0] is True  # why v3 exists: v1 cannot tell the parts apart


def test_unknown_version_is_refused() -> None:
    saved = _answer(3)
    saved["response"]["attribution"]["io_hash_version"] = 2
    with pytest.raises(AnswerError, match="io_hash_version"):
        load_answer(saved)
