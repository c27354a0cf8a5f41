"""A client's evidence as the watcher takes it: a node-signed receipt and the record behind it.

Two shapes are accepted (JSON object, file or text):

- a saved answer, exactly what `loraledger verify answer` and `loraledger dispute open --receipt` read (the node's
  response with its `attribution` object and what was asked); every offline step of `check_answer_offline` must
  pass (ioHash, record, leaf, receipt signer), so a watcher never holds an answer whose text was changed;
- the bare evidence `{"record": {...}, "receipt": "0x..."}` (what a dApp that kept only the attribution has):
  the receipt must recover to the record's node.

Either way the record must be for the watcher's chain and ledger (the contract refuses others). What is held is a
`HeldReceipt`: (node, seq, leaf, 65-byte receipt, record).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attribution import safejson
from attribution.errors import AttributionError
from attribution.hashing import to_checksum_address
from attribution.records import Record, RecordValidationError
from attribution.records.receipt import ReceiptError, recover_receipt_signer
from attribution.verify.answers import AnswerError, check_answer_offline, load_answer

__all__ = ["HeldReceipt", "ReceiptRejected", "parse_evidence"]

#: a saved answer is a few KB; anything far larger is not one
MAX_EVIDENCE_BYTES = 1 << 20


class ReceiptRejected(AttributionError, ValueError):
    """The evidence is not a usable receipt; `problem` names what is wrong and the message says how to fix it."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class HeldReceipt:
    """A receipt the watcher holds: the node signed `leaf` for `seq`; `record` is the record with that leaf."""

    node: str
    seq: int
    leaf: bytes
    receipt: bytes
    record: Record

    def to_json(self) -> dict[str, Any]:
        """JSON view (the evidence as `{"record", "receipt"}` plus its node, seq and leaf)."""
        return {"node": self.node, "seq": self.seq, "leaf": "0x" + self.leaf.hex(),
                "receipt": "0x" + self.receipt.hex(), "record": self.record.to_json()}


def _bare(obj: dict[str, Any]) -> HeldReceipt:
    try:
        record = Record.from_json(obj["record"])
    except (KeyError, TypeError, ValueError, RecordValidationError) as e:
        raise ReceiptRejected("bad_record", f"`record` is not a valid attribution record: {e}; send the "
                              "`attribution.record` object of the node's answer unchanged") from e
    raw = obj.get("receipt")
    if not isinstance(raw, str):
        raise ReceiptRejected("bad_receipt", "`receipt` must be the 0x-hex signature from the answer's "
                              "`attribution.receipt`")
    try:
        sig = bytes.fromhex(raw[2:] if raw[:2] in ("0x", "0X") else raw)
        signer = recover_receipt_signer(record.chain_id, record.ledger, record.node, record.seq, record.leaf(), sig)
    except (ValueError, ReceiptError) as e:
        raise ReceiptRejected("bad_receipt", f"`receipt` is not a valid signature: {e}") from e
    node = to_checksum_address(record.node)
    if signer.lower() != node.lower():
        raise ReceiptRejected("wrong_signer", f"the receipt recovers {signer}, not the record's node {node}: the "
                              "record or the receipt was changed; send both exactly as the node returned them")
    return HeldReceipt(node, record.seq, record.leaf(), sig, record)


def _answer(obj: dict[str, Any]) -> HeldReceipt:
    try:
        answer = load_answer(obj)
    except AnswerError as e:
        raise ReceiptRejected("bad_answer", f"not a saved answer: {e}") from e
    report = check_answer_offline(answer)
    failed = [s for s in report.steps if s.passed is not True]
    if failed:
        s = failed[0]
        raise ReceiptRejected("answer_does_not_verify", f"the saved answer fails `{s.name}`: {s.detail}; send the "
                              "node's response unchanged with the prompt or messages that were asked")
    return HeldReceipt(answer.node, answer.seq, answer.leaf, answer.receipt, answer.record)


def parse_evidence(obj: dict[str, Any] | str | bytes | Path, chain_id: int, ledger: str) -> HeldReceipt:
    """A `HeldReceipt` from a saved answer or bare evidence (see the module doc); `ReceiptRejected` otherwise."""
    if isinstance(obj, Path):
        try:
            data = obj.read_bytes()
        except OSError as e:
            raise ReceiptRejected("unreadable", f"cannot read {obj}: {e}") from e
        obj = data
    if isinstance(obj, (str, bytes)):
        if len(obj) > MAX_EVIDENCE_BYTES:
            raise ReceiptRejected("too_large", f"evidence is {len(obj)} bytes, more than {MAX_EVIDENCE_BYTES}: send "
                                  "one saved answer per request")
        try:
            obj = safejson.loads(obj, what="the receipt evidence")
        except ValueError as e:
            raise ReceiptRejected("bad_json", f"not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise ReceiptRejected("bad_json", "evidence is a JSON object: a saved answer, or {\"record\": ..., "
                              "\"receipt\": \"0x...\"}")
    has_attribution = isinstance(obj.get("attribution"), dict) or isinstance(obj.get("response"), dict)
    held = _answer(obj) if has_attribution else _bare(obj)
    rec = held.record
    want = bytes.fromhex(ledger[2:].lower())
    if rec.chain_id != chain_id or rec.ledger != want:
        raise ReceiptRejected("foreign_record", f"the record is for chain {rec.chain_id}, ledger "
                              f"{to_checksum_address(rec.ledger)}; this watcher watches chain {chain_id}, ledger "
                              f"{to_checksum_address(want)}: hand it to a watcher of that deployment")
    return held
