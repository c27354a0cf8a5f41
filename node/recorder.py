"""From an engine `Usage` to a durable, signed attribution record: the `attribution` object of every answer.

Order (DESIGN.md invariant 1): build the record, append it to the store and wait for its commit (fsync), sign the
receipt, and only then return the object the response carries. The salt goes to the client and nowhere else.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from attribution.hashing import to_checksum_address
from attribution.records import (
    IO_HASH_VERSION,
    IO_KIND_CHAT,
    IO_KIND_COMPLETION,
    PendingRecord,
    io_hash_v3,
)
from attribution.records.receipt import ReceiptSigner
from attribution.store import RecordStore
from node.catalogue import CatalogueEntry

__all__ = ["Recorder"]

_U32 = (1 << 32) - 1
ZERO32 = bytes(32)


@dataclass
class Recorder:
    """Appends one record per answer and returns its attribution object."""

    store: RecordStore
    signer: ReceiptSigner
    chain_id: int
    ledger: bytes
    records_stored: Any = None  # a prometheus Counter, incremented per durable record
    # The latest timestamp handed out: record timestamps never go back in seq order (a wall clock stepped back by
    # NTP must not), because the ledger requires each batch's time range to start where the previous one ended.
    _last_timestamp: int = 0

    @property
    def node(self) -> bytes:
        """The node's address (20 bytes)."""
        return self.signer.node

    async def record(self, *, model_id: bytes, entry: CatalogueEntry | None, prompt_tokens: int,
                     completion_tokens: int, prompt_bytes: bytes, completion_text: str,
                     base_url: str, kind: str = "completion") -> dict[str, Any]:
        """Store the record durably, sign it; returns `{seq, node, record, leaf, salt, io_hash_version, receipt,
        status_url}`. `kind` ("completion" or "chat") goes into the ioHash (v3)."""
        salt = secrets.token_bytes(32)
        # No await between taking the time and enqueueing (append_async enqueues before it awaits): on the one event
        # loop, seq order is timestamp order.
        now = max(int(time.time()), self._last_timestamp)
        self._last_timestamp = now
        pending = PendingRecord(
            chain_id=self.chain_id, ledger=self.ledger, node=self.node, model_id=model_id,
            adapter_id=entry.adapter_id if entry is not None else ZERO32,
            dataset_ids=entry.dataset_ids if entry is not None else (),
            weights_bps=entry.weights_bps if entry is not None else (),
            prompt_tokens=min(prompt_tokens, _U32), completion_tokens=min(completion_tokens, _U32),
            timestamp=now,
            io_hash=io_hash_v3(IO_KIND_CHAT if kind == "chat" else IO_KIND_COMPLETION, salt, prompt_bytes,
                               completion_text.encode()))
        seq = await self.store.append_async(pending)
        if self.records_stored is not None:
            self.records_stored.inc()
        record = pending.with_seq(seq)
        leaf = record.leaf()
        receipt = self.signer.sign(seq, leaf)
        return {
            "seq": seq,
            "node": to_checksum_address(self.node),
            "record": record.to_json(),
            "leaf": "0x" + leaf.hex(),
            "salt": "0x" + salt.hex(),
            "io_hash_version": IO_HASH_VERSION,  # verifiers pick the ioHash rule by it (absent: v1)
            "receipt": "0x" + receipt.hex(),
            "status_url": f"{base_url.rstrip('/')}/v1/attribution/records/{seq}",
        }
