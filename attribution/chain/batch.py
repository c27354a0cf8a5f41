"""`PostedBatch`: a batch header as the ledger stores and emits it, the one type for it in every package.

The ledger keeps `IAttributionLedger.Batch` (root, commitment hash, node, firstSeq, count, postedAt, first/last record
timestamp) and emits `BatchPosted` (the same header; since issue 21's gas work it too carries the commitment's
hash, while the commitment's bytes are read from the posting transaction's calldata, `attribution.chain.commitments`).
Chain, verify, rewards and the indexer all read one of the two; each view fills what it knows: only the event (with
its transaction) has the commitment and where it sits in the chain, only the stored batch (or the event's block) the
time it was posted. The store's
`attribution.store.Batch` is another concept: a node's local batch on its way through the batcher's states.

No web3 here: the rewards rule's inputs hold a `PostedBatch` and stay free of the chain's I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attribution.hashing import to_checksum_address

__all__ = ["PostedBatch"]


@dataclass(frozen=True)
class PostedBatch:
    """One posted batch: the header the ledger stores and emits, and (when read from its event) where it was posted.

    `da_commitment_hash` is keccak256 of the DA commitment (what the ledger stores and the event carries);
    `da_commitment` the commitment itself (from the posting transaction's calldata; None for a stored batch, or with
    `missing_commitment` saying why when the transaction does not hold it). `posted_at` is the posting block's
    timestamp (the ledger stores it; an event's block has it). `block_number`, `block_hash`, `tx_hash` and
    `log_index` locate the event.
    """

    batch_id: int
    node: str
    root: bytes
    first_seq: int
    count: int
    da_commitment_hash: bytes
    first_timestamp: int = 0
    last_timestamp: int = 0
    posted_at: int | None = None
    da_commitment: bytes | None = None
    block_number: int | None = None
    block_hash: bytes | None = None
    tx_hash: str | None = None
    log_index: int | None = None
    missing_commitment: str = ""

    @property
    def end_seq(self) -> int:
        """One past the batch's last seq."""
        return self.first_seq + self.count

    @classmethod
    def from_log(cls, ev: Any, da_commitment: bytes | None = None, missing_commitment: str = "") -> PostedBatch:
        """From a web3 decoded `BatchPosted` event (`contract.events.BatchPosted().process_log` / `get_logs`) and the
        commitment its transaction posted (`attribution.chain.commitments`; None with why when it is not there)."""
        a = ev["args"]
        return cls(batch_id=int(a["batchId"]), node=to_checksum_address(a["node"]), root=bytes(a["root"]),
                   first_seq=int(a["firstSeq"]), count=int(a["count"]),
                   da_commitment_hash=bytes(a["daCommitmentHash"]),
                   first_timestamp=int(a["firstTimestamp"]), last_timestamp=int(a["lastTimestamp"]),
                   da_commitment=da_commitment, block_number=int(ev["blockNumber"]), block_hash=bytes(ev["blockHash"]),
                   tx_hash="0x" + bytes(ev["transactionHash"]).hex(), log_index=int(ev["logIndex"]),
                   missing_commitment=missing_commitment)

    @classmethod
    def from_stored(cls, batch_id: int, stored: Any) -> PostedBatch:
        """From the ledger's `batch(id)` view: (root, daCommitmentHash, node, firstSeq, count, postedAt,
        firstTimestamp, lastTimestamp)."""
        root, da_hash, node, first_seq, count, posted_at, first_ts, last_ts = stored
        return cls(batch_id=int(batch_id), node=to_checksum_address(node), root=bytes(root), first_seq=int(first_seq),
                   count=int(count), da_commitment_hash=bytes(da_hash), first_timestamp=int(first_ts),
                   last_timestamp=int(last_ts), posted_at=int(posted_at))
