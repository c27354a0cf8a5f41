"""`loraledger records ...`: read the node's durable record log (read-only; safe while the node runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from attribution.store import RecordNotFoundError, RecordStore, StoreError
from node.errors import UsageError
from node.settings import load_settings

app = typer.Typer(help="Inspect the node's attribution records (durable log).", no_args_is_help=True)

_DB_HELP = "Record store path (default: settings `store.path`: $LORALEDGER_STORE__PATH, loraledger.toml, " \
    "or .loraledger/records.db)."


def _db_path(db: str | None) -> Path:
    return Path(db) if db else load_settings().store.path


def _open(db: str | None) -> RecordStore:
    import sqlite3

    path = _db_path(db)
    if path.is_dir():
        raise UsageError(f"--db {path} is a directory; pass the record store file (e.g. .loraledger/records.db)")
    try:
        return RecordStore(path, readonly=True)
    except (StoreError, sqlite3.Error) as e:
        raise UsageError(f"cannot open record store {path}: {e}; pass the node's records.db") from e


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def show_record(store: RecordStore, seq: int) -> dict[str, Any]:
    """The JSON view of one record: its fields, leaf, status and batch (if sealed)."""
    try:
        record = store.get(seq)
    except RecordNotFoundError as e:
        raise UsageError(str(e)) from e
    batch = store.batch_of(seq)
    return {
        "record": record.to_json(),
        "leaf": _hex(record.leaf()),
        "status": "stored" if batch is None else batch.state,
        "batch": None if batch is None else {
            "batchId": batch.batch_id, "onchainBatchId": batch.onchain_batch_id, "firstSeq": batch.first_seq,
            "count": batch.count, "state": batch.state, "root": _hex(batch.root),
            "commitment": _hex(batch.commitment), "txHash": _hex(batch.tx_hash),
        },
    }


@app.command("show")
def show(
    seq: int = typer.Argument(..., help="The record's seq."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Print one record as JSON (fields, leaf, status, batch)."""
    if seq < 0:
        raise UsageError(f"seq must be >= 0, got {seq}")
    store = _open(db)
    try:
        typer.echo(json.dumps(show_record(store, seq), indent=2))
    finally:
        store.close()


@app.command("export")
def export(
    from_seq: int = typer.Option(0, "--from", help="First seq to export."),
    to_seq: int | None = typer.Option(None, "--to", help="Stop before this seq (exclusive; default: all)."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Print records [--from, --to) as JSON lines, one record per line, in seq order."""
    if from_seq < 0 or (to_seq is not None and to_seq < from_seq):
        raise UsageError(f"need 0 <= --from <= --to, got --from {from_seq} --to {to_seq}")
    store = _open(db)
    try:
        end = store.next_seq() if to_seq is None else to_seq
        if to_seq is not None and to_seq > store.next_seq():
            raise UsageError(f"--to {to_seq} is past the stored records (next seq {store.next_seq()})")
        for record in store.iter_range(from_seq, end):
            typer.echo(json.dumps(record.to_json(), separators=(",", ":")))
    finally:
        store.close()
