"""The watcher's own state: one small SQLite file (stdlib `sqlite3`, WAL, one connection behind a lock).

- `meta`: the deployment it watches (chain id, ledger, disputes) and the follower's cursor: a file of another
  deployment is refused.
- `blocks`: the hash of every followed block that held a batch and of every page end (reorg detection, as the
  indexer does).
- `batches`: every confirmed `BatchPosted` with the watcher's verdict on it (NULL: not checked yet).
- `receipts`: the receipts clients handed in, keyed (node, seq, leaf), with what became of each.
- `challenges`: what the watcher challenged or proved, keyed by the fault it names (the contract's fault keys:
  `omission:<node>:<seq>` for omission, equivocation and receipt conflicts of one seq, `commission:<batch>` for a
  misplaced record, `availability:<batch>`). The key is written before the transaction is sent, so the watcher
  never challenges one fault twice, across restarts too.
- `files`: receipt files already read from `--receipts` (path, mtime), so a directory is read incrementally.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attribution.errors import AttributionError
from attribution.records import Record
from attribution.watch.receipts import HeldReceipt

__all__ = ["BatchRow", "ChallengeRow", "WatchState", "WatchStateError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id INTEGER PRIMARY KEY, node TEXT NOT NULL, first_seq INTEGER NOT NULL, count INTEGER NOT NULL,
    root BLOB NOT NULL, commitment BLOB NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    posted_at INTEGER NOT NULL, block_number INTEGER NOT NULL, block_hash BLOB NOT NULL, tx_hash TEXT NOT NULL,
    log_index INTEGER NOT NULL, verdict TEXT, detail TEXT, missing_since INTEGER);
CREATE INDEX IF NOT EXISTS batches_node_seq ON batches (node, first_seq);
CREATE TABLE IF NOT EXISTS receipts (
    node TEXT NOT NULL, seq INTEGER NOT NULL, leaf BLOB NOT NULL, receipt BLOB NOT NULL, record TEXT NOT NULL,
    source TEXT NOT NULL, received_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'held', detail TEXT,
    PRIMARY KEY (node, seq, leaf));
CREATE TABLE IF NOT EXISTS challenges (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, node TEXT NOT NULL, batch_id INTEGER NOT NULL, idx INTEGER NOT NULL,
    status TEXT NOT NULL, dispute_id INTEGER, tx_hash TEXT, slashed TEXT, deadline INTEGER, detail TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, result TEXT NOT NULL);
"""

#: receipt states: `held` (nothing due yet), `in_batch` (its leaf is at its seq in a batch that verifies: done),
#: `challenged` (a challenge or proof names its seq)
RECEIPT_STATES = ("held", "in_batch", "challenged")
#: challenge statuses: `sending` (key written, transaction not confirmed), `open` (waiting for the node's answer),
#: `upheld` (the node was slashed or the fault was punished already), `answered` (the node answered: bond lost),
#: `failed` (the transaction reverted for another reason; `detail` says which)
CHALLENGE_STATUSES = ("sending", "open", "upheld", "answered", "failed")


class WatchStateError(AttributionError):
    """The state file is unusable (another deployment's, unreadable); the message says what to do."""


@dataclass(frozen=True)
class BatchRow:
    """A followed batch and the watcher's verdict on it."""

    batch_id: int
    node: str
    first_seq: int
    count: int
    root: bytes
    commitment: bytes
    first_ts: int
    last_ts: int
    posted_at: int
    block_number: int
    block_hash: bytes
    tx_hash: str
    log_index: int
    verdict: str | None
    detail: str | None
    missing_since: int | None


@dataclass(frozen=True)
class ChallengeRow:
    """One fault the watcher acted on."""

    key: str
    kind: str
    node: str
    batch_id: int
    idx: int
    status: str
    dispute_id: int | None
    tx_hash: str | None
    slashed: str | None
    deadline: int | None
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"key": self.key, "kind": self.kind, "node": self.node, "batchId": self.batch_id, "index": self.idx,
                "status": self.status, "disputeId": self.dispute_id, "txHash": self.tx_hash,
                "slashed": self.slashed, "deadline": self.deadline, "detail": self.detail}


class WatchState:
    """The state file of one watcher (see the module doc)."""

    def __init__(self, path: Path | str, *, chain_id: int, ledger: str, disputes: str, deploy_block: int) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a challenge key must survive a power cut
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise WatchStateError(f"cannot open the watcher state {path}: {e}; pass another --state file") from e
        self._lock = threading.RLock()
        self.deploy_block = deploy_block
        want = {"chain_id": str(chain_id), "ledger": ledger, "disputes": disputes}
        with self.tx() as db:
            for key, value in want.items():
                row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                if row is None:
                    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
                elif row[0] != value:
                    raise WatchStateError(f"{path} watches {key} {row[0]}, not {value}: use one --state file per "
                                          "deployment")

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (serialised with every other use of this state)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- follower -------------------------------------------------------------------------------------------

    def cursor(self) -> int:
        """The last block followed (deploy block - 1 before the first page)."""
        rows = self._read("SELECT value FROM meta WHERE key = 'cursor'")
        return int(rows[0][0]) if rows else self.deploy_block - 1

    def top_block(self) -> tuple[int, bytes] | None:
        """The highest stored block (number, hash)."""
        rows = self._read("SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1")
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def blocks_below(self, offset: int, limit: int = 256) -> list[tuple[int, bytes]]:
        """Stored blocks, newest first, `offset` rows down."""
        return [(int(n), bytes(h)) for n, h in self._read(
            "SELECT number, hash FROM blocks ORDER BY number DESC LIMIT ? OFFSET ?", (limit, offset))]

    def save_page(self, end: int, hashes: dict[int, bytes], batches: list[dict[str, Any]]) -> None:
        """One followed page: its blocks' hashes, its batches, the cursor at `end`, in one transaction."""
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO blocks (number, hash) VALUES (?, ?)", list(hashes.items()))
            db.executemany(
                "INSERT OR REPLACE INTO batches (batch_id, node, first_seq, count, root, commitment, first_ts, "
                "last_ts, posted_at, block_number, block_hash, tx_hash, log_index) VALUES (:batch_id, :node, "
                ":first_seq, :count, :root, :commitment, :first_ts, :last_ts, :posted_at, :block_number, "
                ":block_hash, :tx_hash, :log_index)", batches)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?)", (str(end),))

    def rollback(self, ancestor: int) -> int:
        """Forget every batch and block above `ancestor` (a reorg); returns the batches forgotten."""
        with self.tx() as db:
            gone = db.execute("DELETE FROM batches WHERE block_number > ?", (ancestor,)).rowcount
            db.execute("DELETE FROM blocks WHERE number > ?", (ancestor,))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?)",
                       (str(min(ancestor, self.cursor())),))
        return int(gone)

    # -- batches --------------------------------------------------------------------------------------------

    _BATCH_COLS = ("batch_id, node, first_seq, count, root, commitment, first_ts, last_ts, posted_at, block_number, "
                   "block_hash, tx_hash, log_index, verdict, detail, missing_since")

    @staticmethod
    def _batch(row: Any) -> BatchRow:
        return BatchRow(int(row[0]), str(row[1]), int(row[2]), int(row[3]), bytes(row[4]), bytes(row[5]),
                        int(row[6]), int(row[7]), int(row[8]), int(row[9]), bytes(row[10]), str(row[11]),
                        int(row[12]), row[13], row[14], None if row[15] is None else int(row[15]))

    def batches_to_check(self) -> list[BatchRow]:
        """Batches without a verdict, or whose payload was missing (checked again until challenged or found)."""
        return [self._batch(r) for r in self._read(
            f"SELECT {self._BATCH_COLS} FROM batches WHERE verdict IS NULL OR verdict = 'payload_missing' "
            "ORDER BY batch_id")]

    def batch_covering(self, node: str, seq: int) -> BatchRow | None:
        """The followed batch of `node` that covers `seq`."""
        rows = self._read(f"SELECT {self._BATCH_COLS} FROM batches WHERE node = ? AND first_seq <= ? "
                          "ORDER BY first_seq DESC LIMIT 1", (node, seq))
        if not rows:
            return None
        b = self._batch(rows[0])
        return b if seq < b.first_seq + b.count else None

    def set_verdict(self, batch_id: int, verdict: str, detail: str, missing_since: int | None = None) -> None:
        """Record the verdict on a batch (and since when its payload is missing, kept from the first miss)."""
        with self.tx() as db:
            db.execute("UPDATE batches SET verdict = ?, detail = ?, missing_since = COALESCE(missing_since, ?) "
                       "WHERE batch_id = ?", (verdict, detail, missing_since, batch_id))

    def verdict_counts(self) -> dict[str, int]:
        """Batches by verdict ("unchecked" for none yet)."""
        return {str(v or "unchecked"): int(n) for v, n in self._read(
            "SELECT verdict, COUNT(*) FROM batches GROUP BY verdict")}

    # -- receipts -------------------------------------------------------------------------------------------

    def add_receipt(self, held: HeldReceipt, source: str) -> tuple[bool, list[bytes]]:
        """Hold a receipt; returns (new, leaves of the other receipts held for the same node and seq)."""
        with self.tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO receipts (node, seq, leaf, receipt, record, source, received_at) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (held.node, held.seq, held.leaf, held.receipt,
                                                              json.dumps(held.record.to_json()), source, time.time()))
            others = [bytes(r[0]) for r in db.execute("SELECT leaf FROM receipts WHERE node = ? AND seq = ? AND "
                                                       "leaf != ?", (held.node, held.seq, held.leaf))]
        return cur.rowcount == 1, others

    @staticmethod
    def _held(row: Any) -> HeldReceipt:
        return HeldReceipt(str(row[0]), int(row[1]), bytes(row[2]), bytes(row[3]), Record.from_json(json.loads(row[4])))

    def receipts(self, state: str | None = "held") -> list[HeldReceipt]:
        """Receipts in `state` (None: all), by node and seq."""
        sql = "SELECT node, seq, leaf, receipt, record FROM receipts" + (" WHERE state = ?" if state else "")
        rows = self._read(sql + " ORDER BY node, seq", (state,) if state else ())
        return [self._held(r) for r in rows]

    def receipts_for(self, node: str, seq: int) -> list[HeldReceipt]:
        """Every receipt held for (node, seq)."""
        return [self._held(r) for r in self._read("SELECT node, seq, leaf, receipt, record FROM receipts WHERE "
                                                  "node = ? AND seq = ? ORDER BY received_at", (node, seq))]

    def equivocations(self) -> list[tuple[str, int]]:
        """(node, seq) pairs with receipts for two or more different leaves."""
        return [(str(n), int(s)) for n, s in self._read(
            "SELECT node, seq FROM receipts GROUP BY node, seq HAVING COUNT(*) > 1")]

    def set_receipt_state(self, held: HeldReceipt, state: str, detail: str) -> None:
        """Move a receipt to `state` (see RECEIPT_STATES)."""
        with self.tx() as db:
            db.execute("UPDATE receipts SET state = ?, detail = ? WHERE node = ? AND seq = ? AND leaf = ?",
                       (state, detail, held.node, held.seq, held.leaf))

    def receipt_counts(self) -> dict[str, int]:
        """Receipts by state."""
        return {str(s): int(n) for s, n in self._read("SELECT state, COUNT(*) FROM receipts GROUP BY state")}

    # -- challenges -----------------------------------------------------------------------------------------

    _CH_COLS = "key, kind, node, batch_id, idx, status, dispute_id, tx_hash, slashed, deadline, detail"

    @staticmethod
    def _challenge(r: Any) -> ChallengeRow:
        return ChallengeRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), str(r[5]),
                            None if r[6] is None else int(r[6]), r[7], r[8], None if r[9] is None else int(r[9]),
                            r[10])

    def claim(self, key: str, kind: str, node: str, batch_id: int, idx: int) -> bool:
        """Write the challenge key before sending (status `sending`); False when this fault was acted on already."""
        now = time.time()
        with self.tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO challenges (key, kind, node, batch_id, idx, status, created_at, "
                             "updated_at) VALUES (?, ?, ?, ?, ?, 'sending', ?, ?)",
                             (key, kind, node, batch_id, idx, now, now))
        return cur.rowcount == 1

    def update_challenge(self, key: str, status: str, *, dispute_id: int | None = None, tx_hash: str | None = None,
                         slashed: int | None = None, deadline: int | None = None, detail: str | None = None) -> None:
        """Set a challenge's status and whatever else is known now (None keeps the stored value)."""
        with self.tx() as db:
            db.execute("UPDATE challenges SET status = ?, dispute_id = COALESCE(?, dispute_id), tx_hash = "
                       "COALESCE(?, tx_hash), slashed = COALESCE(?, slashed), deadline = COALESCE(?, deadline), "
                       "detail = COALESCE(?, detail), updated_at = ? WHERE key = ?",
                       (status, dispute_id, tx_hash, None if slashed is None else str(slashed), deadline, detail,
                        time.time(), key))

    def challenge(self, key: str) -> ChallengeRow | None:
        """The challenge of `key`."""
        rows = self._read(f"SELECT {self._CH_COLS} FROM challenges WHERE key = ?", (key,))
        return self._challenge(rows[0]) if rows else None

    def challenges(self, status: str | None = None) -> list[ChallengeRow]:
        """Challenges (of one status), oldest first."""
        sql = f"SELECT {self._CH_COLS} FROM challenges" + (" WHERE status = ?" if status else "")
        return [self._challenge(r) for r in self._read(sql + " ORDER BY created_at", (status,) if status else ())]

    # -- receipt files --------------------------------------------------------------------------------------

    def file_seen(self, path: Path, mtime_ns: int) -> bool:
        """Whether this file (at this mtime) was read already."""
        rows = self._read("SELECT mtime_ns FROM files WHERE path = ?", (str(path),))
        return bool(rows) and int(rows[0][0]) == mtime_ns

    def mark_file(self, path: Path, mtime_ns: int, result: str) -> None:
        """Remember that a receipt file was read, and what came of it."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO files (path, mtime_ns, result) VALUES (?, ?, ?)",
                       (str(path), mtime_ns, result))
