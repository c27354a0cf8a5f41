"""What the node sends to answer a challenge: an omission proof from its own batch, a chunk of its own payload.

The payload of a posted batch comes from the node's store (kept in the database, or its archive file once pruned),
else from DA by the batch's commitment; every answer is checked against what the chain holds (the batch root, the
certificate's `chunksRoot`) before it is sent, so a wrong local copy costs no gas. `Unanswerable` means the node
cannot answer however often it retries (its record differs from the receipt, the certificate is not v3, the
payload is gone): the responder raises its alarm. Other errors (DA or RPC down) are retried.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from attribution.chain.commitments import posted_commitment
from attribution.chain.contracts import Ledger
from attribution.chain.errors import CommitmentNotFound
from attribution.da.chunks import chunk_proof, chunks_tree
from attribution.da.client import DAClient
from attribution.da.codec import is_our_commitment, parse_commitment
from attribution.da.errors import DACommitmentInvalid, DANotFound, DAPayloadMismatch, DARequestRejected
from attribution.errors import AttributionError
from attribution.hashing import keccak256
from attribution.merkle import StandardMerkleTree, process_proof
from attribution.records.payload import PayloadError, decode_batch
from attribution.records.tree import record_tree
from attribution.store import Batch, RecordStore
from attribution.verify.batches import columns_of

__all__ = ["AnswerSource", "ChunkAnswer", "ResponderError", "Unanswerable"]

logger = logging.getLogger(__name__)


class ResponderError(AttributionError):
    """Root of the dispute responder's errors."""


class Unanswerable(ResponderError):
    """The node cannot answer this challenge with what it holds; retrying cannot help (the alarm says why)."""


@dataclass(frozen=True)
class ChunkAnswer:
    """The arguments of `resolveAvailability` after the dispute id."""

    commitment: bytes
    chunk: bytes
    proof: list[bytes]


@dataclass
class _Posted:
    """One posted batch as the answers need it: its payload, commitment and (built once) trees."""

    commitment: bytes
    payload: bytes
    record_tree: StandardMerkleTree | None = None
    chunk_tree: StandardMerkleTree | None = None


class AnswerSource:
    """Builds answers for the batches of one node (`store`), keeping the last few payloads and trees."""

    def __init__(self, store: RecordStore, ledger: Ledger, da: DAClient, *, start_block: int = 0,
                 cache_batches: int = 4) -> None:
        self.store = store
        self.ledger = ledger
        self.da = da
        self.start_block = start_block
        self._cache: OrderedDict[int, _Posted] = OrderedDict()
        self._size = cache_batches
        self._lock = threading.Lock()

    # -- answers ------------------------------------------------------------------------------------------------

    def omission_proof(self, batch_id: int, seq: int, leaf: bytes) -> list[bytes]:
        """The proof that `leaf` (the challenged receipt's) is record `seq` of on-chain batch `batch_id`."""
        posted = self._posted(batch_id)
        onchain = self.ledger.batch(batch_id)
        if posted.record_tree is None:
            try:
                decoded = decode_batch(posted.payload)
            except PayloadError as e:
                raise Unanswerable(f"the payload of batch {batch_id} does not decode ({e})") from e
            cols = columns_of(decoded)
            posted.record_tree = record_tree(cols, leaves=cols.leaf_bytes())
        tree = posted.record_tree
        if tree.root_bytes != onchain.root:
            raise Unanswerable(f"the payload of batch {batch_id} rebuilds root 0x{tree.root_bytes.hex()}, not the "
                               f"posted 0x{onchain.root.hex()}")
        index = seq - onchain.first_seq
        if not 0 <= index < onchain.count:
            raise Unanswerable(f"seq {seq} is not in batch {batch_id}")
        proof = tree.get_proof_bytes(index)
        if process_proof(leaf, proof) != onchain.root:  # exactly what respondOmission checks
            raise Unanswerable(f"record {seq} of batch {batch_id} is not the leaf 0x{leaf.hex()} the challenger's "
                               "receipt names (a receipt this node signed for another record)")
        return proof

    def chunk_answer(self, batch_id: int, index: int) -> ChunkAnswer:
        """Chunk `index` of on-chain batch `batch_id`'s payload with its proof under the certificate's chunksRoot."""
        commitment = self._commitment(batch_id)  # checked before any payload is read: a bad one never resolves
        if not is_our_commitment(commitment):
            raise Unanswerable(f"batch {batch_id} was posted with a commitment that is not our DA certificate; "
                               "no chunk can be proven against it")
        try:
            cert = parse_commitment(commitment)
        except DACommitmentInvalid as e:
            raise Unanswerable(f"the commitment of batch {batch_id} is not a valid certificate: {e}") from e
        if not cert.resolvable:
            raise Unanswerable(f"batch {batch_id} was posted with a certificate v{cert.version}, which cannot "
                               "answer an availability challenge (docs/da.md \"Version 2 certificates\")")
        posted = self._posted(batch_id)
        if posted.chunk_tree is None:
            posted.chunk_tree = chunks_tree(posted.payload)
        if posted.chunk_tree.root_bytes != cert.chunks_root:
            raise Unanswerable(f"the payload of batch {batch_id} does not rebuild its certificate's chunksRoot")
        p = chunk_proof(posted.payload, index, posted.chunk_tree)
        return ChunkAnswer(posted.commitment, p.chunk, p.proof)

    # -- payloads -----------------------------------------------------------------------------------------------

    def _posted(self, batch_id: int) -> _Posted:
        with self._lock:
            hit = self._cache.get(batch_id)
            if hit is not None:
                self._cache.move_to_end(batch_id)
                return hit
        posted = self._load(batch_id)
        with self._lock:
            self._cache[batch_id] = posted
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return posted

    def _local(self, batch_id: int) -> Batch | None:
        return next((b for b in self.store.batches() if b.onchain_batch_id == batch_id), None)

    def _commitment(self, batch_id: int, local: Batch | None = None) -> bytes:
        """The commitment batch `batch_id` was posted with (the store's copy, else its `BatchPosted` event)."""
        with self._lock:
            hit = self._cache.get(batch_id)
        if hit is not None:
            return hit.commitment
        stored_hash = self.ledger.batch(batch_id).da_commitment_hash
        local = local or self._local(batch_id)
        if local is not None and local.commitment is not None and keccak256(local.commitment) == stored_hash:
            return local.commitment
        return self._commitment_from_chain(batch_id, stored_hash)

    def _load(self, batch_id: int) -> _Posted:
        local = self._local(batch_id)
        commitment = self._commitment(batch_id, local)
        payload = self.store.batch_payload(local.batch_id) if local is not None else None
        if payload is None or (is_our_commitment(commitment) and not self._matches(commitment, payload)):
            payload = self._from_da(batch_id, commitment)
        return _Posted(commitment, payload)

    @staticmethod
    def _matches(commitment: bytes, payload: bytes) -> bool:
        try:
            cert = parse_commitment(commitment)
        except DACommitmentInvalid:
            return True  # nothing to compare with; the answers check against the chain
        return cert.payload_length == len(payload) and cert.payload_keccak == keccak256(payload)

    def _commitment_from_chain(self, batch_id: int, stored_hash: bytes) -> bytes:
        for ev in self.ledger.events("BatchPosted", from_block=self.start_block, reverse=True, batchId=batch_id):
            try:  # the event carries the hash; the bytes are in the posting transaction's calldata
                return posted_commitment(self.ledger, ev.tx_hash, stored_hash)
            except CommitmentNotFound as e:
                raise Unanswerable(f"batch {batch_id}: {e}") from e
        raise Unanswerable(f"no BatchPosted event with the stored commitment of batch {batch_id} since block "
                           f"{self.start_block}")

    def _from_da(self, batch_id: int, commitment: bytes) -> bytes:
        try:
            payload = self.da.get(commitment)
        except DANotFound as e:
            raise Unanswerable(f"neither the store nor DA holds the payload of batch {batch_id}") from e
        except DAPayloadMismatch as e:
            raise Unanswerable(f"DA serves a payload for batch {batch_id} that fails its certificate: {e}") from e
        except DARequestRejected as e:
            raise Unanswerable(f"DA refuses the commitment of batch {batch_id}: {e}") from e
        logger.info("responder: payload of batch %d read from DA (not in the store)", batch_id)
        return payload

