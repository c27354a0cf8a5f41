"""Check a saved node answer step by step: text → ioHash → leaf → receipt → batch on-chain (and its disputes) →
DA payload.

A saved answer is the node's JSON response (OpenAI shape plus `attribution: {seq, node, record, leaf, salt,
receipt, status_url}`) together with what was asked, in one of two layouts:

    {"request": {"prompt": "..."} | {"messages": [...]}, "response": {...}}
    {...the response..., "prompt": "..."}  or  {...the response..., "messages": [...]}

The completion text is `choices[0].text` (completions) or `choices[0].message.content` (chat). Each step says
what it compared; `AnswerReport.ok` is True only when every step passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution import safejson
from attribution.chain.disputes import DisputeKind, DisputeStatus
from attribution.chain.errors import ChainError
from attribution.errors import AttributionError
from attribution.hashing import is_address, to_checksum_address
from attribution.records import (
    IO_HASH_VERSION,
    IO_KIND_CHAT,
    IO_KIND_COMPLETION,
    Record,
    RecordValidationError,
    io_hash,
    io_hash_v3,
)
from attribution.records.receipt import ReceiptError, prompt_bytes, recover_receipt_signer
from attribution.verify import RecordNotPostedError, Verifier
from attribution.verify.disputes import DisputeReport, record_disputes

__all__ = ["AnswerError", "SavedAnswer", "Step", "AnswerReport", "load_answer", "check_answer_offline",
           "verify_answer"]


class AnswerError(AttributionError, ValueError):
    """A saved answer file is not readable as a node answer; the message names the missing or bad field."""


@dataclass(frozen=True)
class SavedAnswer:
    """What a saved answer holds: the prompt bytes, the completion text and the attribution object."""

    prompt: bytes
    completion: str
    seq: int
    node: str
    record: Record
    leaf: bytes
    salt: bytes
    receipt: bytes
    status_url: str | None
    io_version: int = 1  # the answer's `io_hash_version` (absent: 1, records from before v3)
    kind: int = IO_KIND_COMPLETION  # chat when the request had `messages`


def _hex(value: Any, field_name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise AnswerError(f"attribution.{field_name} must be a 0x-hex string, got {type(value).__name__}")
    try:
        b = bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    except ValueError as e:
        raise AnswerError(f"attribution.{field_name} is not hex: {value[:24]!r}") from e
    if size is not None and len(b) != size:
        raise AnswerError(f"attribution.{field_name} must be {size} bytes, got {len(b)}")
    return b


def load_answer(obj: dict[str, Any] | str | Path) -> SavedAnswer:
    """Parse a saved answer (dict, JSON text, or a path to a JSON file)."""
    if isinstance(obj, Path):
        try:
            obj = safejson.loads(obj.read_bytes(), what="the answer file")
        except (OSError, ValueError) as e:
            raise AnswerError(f"cannot read answer file: {e}") from e
    elif isinstance(obj, str):
        try:
            obj = safejson.loads(obj, what="the answer")
        except ValueError as e:
            raise AnswerError(f"answer is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise AnswerError("an answer is a JSON object")
    response = obj.get("response", obj)
    request = obj.get("request", obj)
    if not isinstance(response, dict) or not isinstance(request, dict):
        raise AnswerError("`request` and `response` must be JSON objects")
    try:
        prompt = prompt_bytes(prompt=request.get("prompt"), messages=request.get("messages"))
    except ReceiptError as e:
        raise AnswerError(f"the answer must carry what was asked: {e}") from e
    try:
        choice = response["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError) as e:
        raise AnswerError("no completion text: expected choices[0].text or choices[0].message.content") from e
    if not isinstance(text, str):
        raise AnswerError("the completion text must be a string")
    att = response.get("attribution")
    if not isinstance(att, dict):
        raise AnswerError("the response has no `attribution` object; was it saved from a loraledger node?")
    try:
        record = Record.from_json(att["record"])
        seq, node = int(att["seq"]), str(att["node"])
    except KeyError as e:
        raise AnswerError(f"attribution lacks {e.args[0]!r}") from e
    except (RecordValidationError, TypeError, ValueError) as e:
        raise AnswerError(f"attribution.record is invalid: {e}") from e
    if not is_address(node):
        raise AnswerError(f"attribution.node {node!r} is not an address")
    for key in ("leaf", "salt", "receipt"):
        if key not in att:
            raise AnswerError(f"attribution lacks {key!r}")
    version = att.get("io_hash_version", 1)
    if version not in (1, IO_HASH_VERSION) or isinstance(version, bool):
        raise AnswerError(f"attribution.io_hash_version is {version!r}: this verifier knows 1 (legacy) and "
                          f"{IO_HASH_VERSION}")
    kind = IO_KIND_CHAT if request.get("messages") is not None else IO_KIND_COMPLETION
    return SavedAnswer(prompt=prompt, completion=text, seq=seq, node=to_checksum_address(node), record=record,
                       leaf=_hex(att["leaf"], "leaf", 32), salt=_hex(att["salt"], "salt", 32),
                       receipt=_hex(att["receipt"], "receipt", 65), status_url=att.get("status_url"),
                       io_version=version, kind=kind)


@dataclass(frozen=True)
class Step:
    """One check: passed (True), failed (False) or could not be done yet (None, e.g. not posted)."""

    name: str
    passed: bool | None
    detail: str


@dataclass
class AnswerReport:
    """The steps of `verify_answer`, in order."""

    steps: list[Step] = field(default_factory=list)
    batch_id: int | None = None
    proof: list[bytes] = field(default_factory=list)
    disputes: DisputeReport | None = None

    def add(self, name: str, passed: bool | None, detail: str) -> bool:
        """Append a step; returns whether it passed."""
        self.steps.append(Step(name, passed, detail))
        return passed is True

    @property
    def ok(self) -> bool:
        """Every step passed."""
        return bool(self.steps) and all(s.passed is True for s in self.steps)

    @property
    def pending(self) -> bool:
        """Nothing failed, but something is not checkable yet (the record is not in a posted batch)."""
        return not self.ok and all(s.passed is not False for s in self.steps)

    def text(self) -> str:
        """A readable report, one line per step."""
        mark = {True: "PASS", False: "FAIL", None: "WAIT"}
        lines = [f"{i}. [{mark[s.passed]}] {s.name}: {s.detail}" for i, s in enumerate(self.steps, 1)]
        if self.disputes is not None and self.disputes.disputes:
            lines += ["disputes:", *(f"   {x}" for x in self.disputes.lines())]
        verdict = "VERIFIED" if self.ok else "PENDING" if self.pending else "NOT VERIFIED"
        return "\n".join([*lines, f"=> {verdict}"])

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"ok": self.ok, "pending": self.pending, "batchId": self.batch_id,
                "proof": ["0x" + p.hex() for p in self.proof],
                "steps": [{"name": s.name, "passed": s.passed, "detail": s.detail} for s in self.steps],
                "disputes": None if self.disputes is None else self.disputes.to_json()}


def check_answer_offline(answer: SavedAnswer, report: AnswerReport | None = None) -> AnswerReport:
    """The checks that need neither chain nor DA: ioHash, record fields, leaf, receipt signer."""
    r = report or AnswerReport()
    rec = answer.record
    if answer.io_version == IO_HASH_VERSION:
        computed = io_hash_v3(answer.kind, answer.salt, answer.prompt, answer.completion)
        rule = (f"v3 keccak256(abi.encode(kind {answer.kind} "
                f"({'chat' if answer.kind == IO_KIND_CHAT else 'completion'}), salt, keccak256(prompt), "
                "keccak256(completion)))")
    else:  # records from before v3: the plain concatenation cannot tell prompt bytes from completion bytes
        computed = io_hash(answer.salt, answer.prompt, answer.completion)
        rule = "v1 (legacy) keccak256(salt ‖ prompt ‖ completion)"
    r.add("ioHash", computed == rec.io_hash, f"{rule} = 0x{computed.hex()}; record says 0x{rec.io_hash.hex()}")
    node_bytes = bytes.fromhex(answer.node[2:])
    r.add("record is this answer's", rec.seq == answer.seq and rec.node == node_bytes,
          f"record seq {rec.seq}, node 0x{rec.node.hex()}; attribution seq {answer.seq}, node {answer.node}")
    leaf = rec.leaf()
    r.add("leaf", leaf == answer.leaf, f"leaf of the record = 0x{leaf.hex()}; attribution says 0x{answer.leaf.hex()}")
    try:
        signer = recover_receipt_signer(rec.chain_id, rec.ledger, rec.node, rec.seq, leaf, answer.receipt)
        r.add("receipt signed by the node", signer.lower() == answer.node.lower(),
              f"EIP-712 Receipt(chainId {rec.chain_id}, seq {rec.seq}, leaf) recovers {signer}")
    except ReceiptError as e:
        r.add("receipt signed by the node", False, str(e))
    return r


def verify_answer(answer: SavedAnswer, verifier: Verifier) -> AnswerReport:
    """Every step: the offline checks, then the deployment, the batch on-chain, its DA payload and `verifyRecord`."""
    r = check_answer_offline(answer)
    rec = answer.record
    ledger = verifier.ledger.address
    if not r.add("deployment", rec.chain_id == verifier.chain_id and rec.ledger == bytes.fromhex(ledger[2:]),
                 f"record for chain {rec.chain_id}, ledger 0x{rec.ledger.hex()}; verifying against chain "
                 f"{verifier.chain_id}, ledger {ledger}"):
        return r
    try:
        event = verifier.find_batch(answer.node, rec.seq)
    except RecordNotPostedError as e:
        r.add("posted in a batch", None, str(e))
        if verifier.disputes is not None:
            r.disputes = record_disputes(verifier.disputes, answer.node, rec.seq, None)
        return r
    r.batch_id = event.batch_id
    r.add("posted in a batch", True, f"batch {event.batch_id} covers seqs {event.first_seq}.."
          f"{event.first_seq + event.count - 1}, posted in block {event.block_number} (tx {event.tx_hash})")
    if verifier.disputes is not None:
        r.disputes = d = record_disputes(verifier.disputes, answer.node, rec.seq, event.batch_id)
        gone = [x.dispute_id for x in d.disputes if x.kind is DisputeKind.AVAILABILITY
                and x.status is DisputeStatus.UPHELD]
        r.add("batch available (BatchDisputes)", not d.unavailable,
              f"batch {event.batch_id} was marked unavailable (dispute {', '.join(map(str, gone))}): the node did not "
              "publish a challenged chunk on-chain; this record earns nothing in rewards" if d.unavailable else
              f"{d.summary()}; not marked unavailable")
    check = verifier.check_event(event, keep_decoded=True)
    if not r.add("DA payload rebuilds the posted root", check.ok, f"{check.verdict.value}: {check.detail}"):
        return r
    opened = verifier.open_record(check, rec.seq)
    assert opened.record is not None  # an ok batch always opens
    same = opened.record.leaf() == rec.leaf()
    r.add("record in the DA payload", same, "the payload's record at this seq is the answer's record" if same else
          f"the payload's record at seq {rec.seq} has leaf 0x{opened.record.leaf().hex()}, not the answer's")
    if not same:
        return r
    r.proof = opened.proof
    r.add("verifyRecord (eth_call)", opened.onchain is True,
          f"ledger.verifyRecord(batch {event.batch_id}, record, proof of {len(opened.proof)} nodes) = "
          f"{opened.onchain}")
    try:
        head = verifier.ledger.client.block_number()
    except ChainError as e:  # only the confirmation count is lost
        r.add("confirmations", None, f"cannot read the head: {e}")
        return r
    assert event.block_number is not None  # find_batch reads BatchPosted logs, which carry their block
    r.add("confirmations", True, f"{head - event.block_number + 1} blocks (head {head})")
    return r

