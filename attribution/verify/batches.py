"""Independent verification of posted batches from the chain and the DA layer alone (DESIGN.md invariant 4).

For each `BatchPosted` event (read as a `PostedBatch`, `attribution.chain.batch`, with the commitment from the
posting transaction's calldata: the event carries its hash): fetch the payload from DA by the commitment, check
that the commitment hashes to the one the ledger stored, decode it strictly, check its header (chainId, ledger,
node, firstSeq, count) against the batch, rebuild the Merkle tree and compare the root with the posted root.
Each batch gets one `Verdict`. `check_payload` is the pure part (bytes in, verdict out), shared with the indexer;
`Verifier` adds the RPC and DA reads, record proofs (`verify_record`) and the step-by-step check of a saved answer
(`verify_answer`, in `attribution.verify.answers`).

A verdict is evidence about a batch. Failing to reach the RPC or DA is not: it raises `VerifyError` and the caller
retries later.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from attribution.chain.batch import PostedBatch
from attribution.chain.commitments import posted_commitment
from attribution.chain.contracts import Ledger
from attribution.chain.disputes import BatchDisputes
from attribution.chain.errors import ChainError, CommitmentNotFound
from attribution.chain.logs import DEFAULT_LOG_BLOCK_RANGE, iter_logs
from attribution.da.client import DAClient
from attribution.da.errors import DAError, DANotFound, DAPayloadMismatch
from attribution.errors import AttributionError
from attribution.hashing import keccak256, to_checksum_address
from attribution.merkle import StandardMerkleTree
from attribution.records import Record, RecordColumns
from attribution.records.payload import DecodedBatch, PayloadError, decode_batch
from attribution.records.tree import record_tree

__all__ = [
    "DEFAULT_PAGE_BLOCKS",
    "Verdict",
    "VerifyError",
    "BatchNotFoundError",
    "RecordNotPostedError",
    "BatchCheck",
    "NodeReport",
    "RecordCheck",
    "batch_events",
    "read_commitment",
    "fetch_posted",
    "check_payload",
    "commitment_of",
    "columns_of",
    "Verifier",
]

log = logging.getLogger(__name__)

#: Blocks per `eth_getLogs` request at most (the chain layer halves a page the provider refuses).
DEFAULT_PAGE_BLOCKS = DEFAULT_LOG_BLOCK_RANGE
_BATCH_POSTED_TOPIC = keccak256(b"BatchPosted(uint256,address,bytes32,uint64,uint32,uint64,uint64,bytes32)")


class Verdict(enum.StrEnum):
    """What verification says about one posted batch."""

    OK = "ok"
    PAYLOAD_MISSING = "payload_missing"
    ROOT_MISMATCH = "root_mismatch"
    HEADER_MISMATCH = "header_mismatch"
    MALFORMED = "malformed"


class VerifyError(AttributionError):
    """Verification could not run (RPC or DA unreachable, unknown batch): no verdict; fix the cause and retry."""


class BatchNotFoundError(VerifyError, LookupError):
    """No `BatchPosted` event for this batch id in the block range searched; check the id and `--from-block`."""


class RecordNotPostedError(VerifyError, LookupError):
    """The record's seq is not covered by any posted batch yet; wait for the node's batcher and retry."""


def read_commitment(ledger: Ledger, ev: Any) -> tuple[bytes | None, str]:
    """The commitment of a decoded `BatchPosted` event from its transaction's calldata, or (None, why) when it is
    not there (posted through a contract); RPC failures raise `ChainError`."""
    try:
        return posted_commitment(ledger, bytes(ev["transactionHash"]), bytes(ev["args"]["daCommitmentHash"])), ""
    except CommitmentNotFound as e:
        return None, str(e)


def batch_events(ledger: Ledger, from_block: int, to_block: int | None = None, *, node: str | None = None,
                 batch_id: int | None = None, page_blocks: int | None = None,
                 reverse: bool = False) -> Iterator[PostedBatch]:
    """`BatchPosted` events in `[from_block, to_block]` (default: latest) in chain order (newest first with
    `reverse`), read with the chain layer's paged `eth_getLogs` (`page_blocks` caps a page; the provider's own
    limits halve it). Optionally only one node's or one batch id's (indexed topics)."""
    if page_blocks is not None:
        if page_blocks < 1:
            raise VerifyError(f"page_blocks must be >= 1, got {page_blocks}")
        ledger.client.log_block_range = min(ledger.client.log_block_range, page_blocks)
    event = ledger.contract.events.BatchPosted()
    topics: list[bytes | None] = [_BATCH_POSTED_TOPIC,
                                  None if batch_id is None else int(batch_id).to_bytes(32, "big"),
                                  None if node is None else bytes(12) + bytes.fromhex(node[2:])]
    try:
        for lg in iter_logs(ledger.client, address=ledger.address, from_block=max(0, from_block),
                            to_block="latest" if to_block is None else to_block, topics=topics, reverse=reverse):
            decoded = event.process_log(lg)
            yield PostedBatch.from_log(decoded, *read_commitment(ledger, decoded))
    except ChainError as e:
        raise VerifyError(f"reading BatchPosted events: {e}") from e


@dataclass(frozen=True)
class BatchCheck:
    """The verdict on one posted batch, with what was compared."""

    posted: PostedBatch
    verdict: Verdict
    detail: str
    rebuilt_root: bytes | None = None
    decoded: DecodedBatch | None = field(default=None, compare=False, repr=False)
    tree: StandardMerkleTree | None = field(default=None, compare=False, repr=False)

    @property
    def batch_id(self) -> int:
        """The ledger's batch id."""
        return self.posted.batch_id

    @property
    def node(self) -> str:
        """The node that posted the batch."""
        return self.posted.node

    @property
    def first_seq(self) -> int:
        """The batch's first seq."""
        return self.posted.first_seq

    @property
    def count(self) -> int:
        """The batch's record count."""
        return self.posted.count

    @property
    def posted_root(self) -> bytes:
        """The root the batch was posted with."""
        return self.posted.root

    @property
    def block_number(self) -> int | None:
        """The block of the batch's `BatchPosted` event."""
        return self.posted.block_number

    @property
    def ok(self) -> bool:
        """True when the verdict is `ok`."""
        return self.verdict is Verdict.OK

    def to_json(self) -> dict[str, Any]:
        """JSON view (no payload)."""
        return {"batchId": self.batch_id, "node": self.node, "firstSeq": self.first_seq, "count": self.count,
                "verdict": self.verdict.value, "detail": self.detail, "postedRoot": "0x" + self.posted_root.hex(),
                "rebuiltRoot": None if self.rebuilt_root is None else "0x" + self.rebuilt_root.hex(),
                "blockNumber": self.block_number}


def columns_of(decoded: DecodedBatch) -> RecordColumns:
    """The decoded payload as `RecordColumns` (leaves in one C call, records on demand)."""
    seqs = decoded.first_seq + _arange(decoded.count)
    return RecordColumns(decoded.chain_id, decoded.ledger, decoded.node, decoded.profiles, seqs,
                         decoded.profile_idx, decoded.prompt_tokens, decoded.completion_tokens, decoded.timestamps,
                         decoded.io_hashes)


def _arange(n: int) -> Any:
    import numpy as np

    return np.arange(n, dtype=np.uint64)


def _tree(decoded: DecodedBatch) -> StandardMerkleTree:
    cols = columns_of(decoded)
    return record_tree(cols, leaves=cols.leaf_bytes())


def check_payload(event: PostedBatch, chain_id: int, ledger: str, payload: bytes | None, *,
                  stored: PostedBatch | None = None, missing_reason: str = "DA has no payload for the commitment",
                  keep_decoded: bool = False) -> BatchCheck:
    """The verdict on one batch (`event`: as its `BatchPosted` event says) given its payload bytes (None when DA
    could not produce them). Pure: no I/O.

    `stored` is the ledger's `batch(id)`; when given, the event's commitment must hash to the stored one and the
    event's root, node, firstSeq and count must equal the stored ones.
    """
    def verdict(v: Verdict, detail: str, rebuilt: bytes | None = None, decoded: DecodedBatch | None = None,
                tree: StandardMerkleTree | None = None) -> BatchCheck:
        return BatchCheck(event, v, detail, rebuilt, decoded if keep_decoded else None,
                          tree if keep_decoded else None)

    if event.da_commitment is None and event.missing_commitment:  # nothing to compare or fetch
        return verdict(Verdict.PAYLOAD_MISSING, event.missing_commitment)
    if stored is not None:
        event_hash = event.da_commitment_hash if event.da_commitment is None else keccak256(event.da_commitment)
        if event_hash != stored.da_commitment_hash:
            return verdict(Verdict.PAYLOAD_MISSING, "keccak256(event commitment) differs from the commitment hash "
                           "the ledger stored; the event is not this batch's (RPC serving wrong logs?)")
        diffs = [name for name, a, b in (
            ("root", event.root, stored.root), ("node", event.node.lower(), stored.node.lower()),
            ("firstSeq", event.first_seq, stored.first_seq), ("count", event.count, stored.count)) if a != b]
        if diffs:
            return verdict(Verdict.HEADER_MISMATCH, f"event and stored batch differ in {', '.join(diffs)}")
    if payload is None:
        return verdict(Verdict.PAYLOAD_MISSING, missing_reason)
    try:
        decoded = decode_batch(payload)
    except PayloadError as e:
        return verdict(Verdict.MALFORMED, f"{type(e).__name__}: {e}")
    expected = {"chainId": chain_id, "ledger": bytes.fromhex(ledger[2:].lower()),
                "node": bytes.fromhex(event.node[2:].lower()), "firstSeq": event.first_seq, "count": event.count}
    got = {"chainId": decoded.chain_id, "ledger": decoded.ledger, "node": decoded.node,
           "firstSeq": decoded.first_seq, "count": decoded.count}
    diffs = [f"{k} {_show(got[k])} != {_show(expected[k])}" for k in expected if got[k] != expected[k]]
    if diffs:
        return verdict(Verdict.HEADER_MISMATCH, "payload header vs batch: " + "; ".join(diffs), decoded=decoded)
    if decoded.count:
        # v3: the posted header bounds every record's time (records are priced at their own time).
        lo, hi = int(decoded.timestamps.min()), int(decoded.timestamps.max())
        if lo < event.first_timestamp or hi > event.last_timestamp:
            return verdict(Verdict.MALFORMED, f"record timestamps [{lo}, {hi}] leave the batch header's range "
                           f"[{event.first_timestamp}, {event.last_timestamp}]", decoded=decoded)
    try:
        tree = _tree(decoded)
    except AttributionError as e:  # a profile the record rules refuse: the payload cannot stand for records
        return verdict(Verdict.MALFORMED, f"records cannot be rebuilt: {e}")
    rebuilt = tree.root_bytes
    if rebuilt != event.root:
        return verdict(Verdict.ROOT_MISMATCH, f"rebuilt root 0x{rebuilt.hex()} != posted 0x{event.root.hex()}",
                       rebuilt, decoded, tree)
    return verdict(Verdict.OK, f"{decoded.count} records rebuild the posted root", rebuilt, decoded, tree)


def _show(v: Any) -> str:
    return "0x" + v.hex() if isinstance(v, bytes) else str(v)


@dataclass(frozen=True)
class NodeReport:
    """Every batch of one node with its verdict, and whether the node's seqs on-chain are gap-free."""

    node: str
    checks: list[BatchCheck]
    next_seq: int
    gaps: list[str]

    @property
    def ok(self) -> bool:
        """All batches ok and no gap."""
        return not self.gaps and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"node": self.node, "nextSeq": self.next_seq, "ok": self.ok, "gaps": self.gaps,
                "batches": [c.to_json() for c in self.checks]}


@dataclass(frozen=True)
class RecordCheck:
    """A record opened from its batch's DA payload, with its proof and the ledger's `verifyRecord` answer."""

    batch: BatchCheck
    record: Record | None
    proof: list[bytes]
    onchain: bool | None

    @property
    def ok(self) -> bool:
        """Batch ok and `verifyRecord` accepted the proof."""
        return self.batch.ok and self.onchain is True

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"ok": self.ok, "batch": self.batch.to_json(),
                "record": None if self.record is None else self.record.to_json(),
                "leaf": None if self.record is None else "0x" + self.record.leaf().hex(),
                "proof": ["0x" + p.hex() for p in self.proof], "verifyRecord": self.onchain}


class Verifier:
    """Verifies batches of one ledger from its RPC and a DA endpoint; trusts nothing the nodes say."""

    def __init__(self, ledger: Ledger, da: DAClient, *, from_block: int = 0,
                 page_blocks: int = DEFAULT_PAGE_BLOCKS, disputes: BatchDisputes | None = None) -> None:
        self.ledger = ledger
        self.da = da
        #: the deployment's BatchDisputes, when known: `verify batch` and `verify answer` show its disputes
        self.disputes = disputes
        self.from_block = from_block
        self.page_blocks = page_blocks

    @property
    def chain_id(self) -> int:
        """The chain id the RPC serves."""
        return self.ledger.client.chain_id

    def events(self, *, node: str | None = None, batch_id: int | None = None,
               to_block: int | None = None) -> list[PostedBatch]:
        """`BatchPosted` events since `from_block` (optionally of one node or one batch)."""
        return list(batch_events(self.ledger, self.from_block, to_block, node=node, batch_id=batch_id,
                                 page_blocks=self.page_blocks))

    def fetch(self, commitment: bytes) -> tuple[bytes | None, str]:
        """The payload for `commitment`, or (None, why) when DA does not have it or serves other bytes."""
        try:
            return self.da.get(commitment), ""
        except DANotFound as e:
            return None, f"DA has no payload for the commitment ({e})"
        except DAPayloadMismatch as e:
            return None, f"DA served bytes that are not the committed payload ({e})"
        except DAError as e:  # unreachable or refused: no evidence either way
            raise VerifyError(f"cannot read DA at {self.da.base_url}: {e}") from e

    def stored(self, batch_id: int) -> PostedBatch:
        """The ledger's stored batch."""
        try:
            return self.ledger.batch(batch_id)
        except ChainError as e:
            raise VerifyError(f"cannot read batch {batch_id} from the ledger: {e}") from e

    def check_event(self, event: PostedBatch, *, keep_decoded: bool = False) -> BatchCheck:
        """Verdict for the batch of one event."""
        payload, why = fetch_posted(self, event)
        check = check_payload(event, self.chain_id, self.ledger.address, payload, stored=self.stored(event.batch_id),
                              missing_reason=why, keep_decoded=keep_decoded)
        log.info("batch %d of %s: %s", event.batch_id, event.node, check.verdict.value)
        return check

    def event_of(self, batch_id: int) -> PostedBatch:
        """The `BatchPosted` event of `batch_id`."""
        found = self.events(batch_id=batch_id)
        if not found:
            raise BatchNotFoundError(f"no BatchPosted event for batch {batch_id} since block {self.from_block}; "
                                     f"the ledger has {self.ledger.batch_count()} batches")
        return found[-1]

    def verify_batch(self, batch_id: int) -> BatchCheck:
        """Verdict on batch `batch_id`."""
        return self.check_event(self.event_of(batch_id))

    def verify_node(self, node: str) -> NodeReport:
        """Verdicts on every batch of `node`, and a check that its batches cover seqs 0..nextSeq-1 without gaps.

        The events and `nextSeq` are read at one block: on a live node a batch posted while the others are checked
        would otherwise look like a gap."""
        node = to_checksum_address(node)
        try:
            head = self.ledger.client.block_number()
        except ChainError as e:
            raise VerifyError(f"reading the chain head: {e}") from e
        events = self.events(node=node, to_block=head)
        checks = [self.check_event(ev) for ev in events]
        gaps = []
        expect = 0
        for ev in sorted(events, key=lambda e: e.first_seq):
            if ev.first_seq != expect:
                gaps.append(f"batch {ev.batch_id} starts at seq {ev.first_seq}, expected {expect}")
            expect = ev.first_seq + ev.count
        next_seq = self.ledger.next_seq(node, block=head)
        if next_seq != expect:
            gaps.append(f"ledger nextSeq at block {head} is {next_seq} but the events up to it cover seqs up to "
                        f"{expect} (lower --from-block?)")
        return NodeReport(node, checks, next_seq, gaps)

    def find_batch(self, node: str, seq: int) -> PostedBatch:
        """The event of the batch of `node` that covers `seq` (newest first: recent records are found fast)."""
        for ev in batch_events(self.ledger, self.from_block, node=to_checksum_address(node),
                               page_blocks=self.page_blocks, reverse=True):
            if ev.first_seq <= seq < ev.first_seq + ev.count:
                return ev
        raise RecordNotPostedError(f"seq {seq} of node {node} is in no posted batch yet (ledger nextSeq "
                                   f"{self.ledger.next_seq(node)}); wait for the node's batcher")

    def verify_record(self, node: str, seq: int) -> RecordCheck:
        """Open record `seq` of `node` from its batch's DA payload, prove it and ask `verifyRecord` by eth_call."""
        event = self.find_batch(to_checksum_address(node), seq)
        check = self.check_event(event, keep_decoded=True)
        return self.open_record(check, seq)

    def open_record(self, check: BatchCheck, seq: int) -> RecordCheck:
        """The record `seq` of a checked batch, its proof, and `verifyRecord`'s answer (None when not checkable)."""
        if check.decoded is None or check.verdict in (Verdict.MALFORMED, Verdict.HEADER_MISMATCH):
            return RecordCheck(check, None, [], None)
        cols = columns_of(check.decoded)
        tree = check.tree or record_tree(cols, leaves=cols.leaf_bytes())
        index = seq - check.first_seq
        record = cols[index]
        proof = tree.get_proof_bytes(index)
        try:
            onchain = self.ledger.verify_record(check.batch_id, record.abi_values(), proof)
        except ChainError as e:
            raise VerifyError(f"verifyRecord eth_call failed: {e}") from e
        return RecordCheck(_without_payload(check), record, proof, onchain)


def fetch_posted(verifier: Verifier, event: PostedBatch) -> tuple[bytes | None, str]:
    """The payload of an event's batch from DA, or (None, why): DA lacks it, or the commitment was not in the
    posting transaction's calldata (`missing_commitment`: posted through a contract), which leaves nothing to fetch."""
    if event.da_commitment is None and event.missing_commitment:
        return None, event.missing_commitment
    return verifier.fetch(commitment_of(event))


def commitment_of(event: PostedBatch) -> bytes:
    """The DA commitment of a batch read from its event (the ledger's storage keeps only its hash)."""
    if event.da_commitment is None:
        raise VerifyError(f"batch {event.batch_id} was read from the ledger's storage, which keeps only the hash of "
                          "its DA commitment: read its BatchPosted event (`batch_events`) to fetch the payload")
    return event.da_commitment


def _without_payload(check: BatchCheck) -> BatchCheck:
    return dataclasses.replace(check, decoded=None, tree=None)
