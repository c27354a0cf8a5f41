"""The indexer's tables (SQLAlchemy Core). Alembic migrations under `migrations/versions` create exactly these;
a test compares the migrated database with this metadata.

Integers that are uint64 on-chain (seq, timestamps, block numbers) are stored as signed 64-bit BIGINT: values past
2**63 - 1 are refused when written (no chain reaches them). Hashes, ids and addresses are raw bytes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

#: key/value state: chain id, contract addresses, the sync cursor.
meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: hashes of indexed blocks (each block that held an event, and each page end) for reorg detection.
blocks = Table(
    "blocks", metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

#: one row per BatchPosted event; `verdict` is NULL until the batch was checked against DA.
batches = Table(
    "batches", metadata,
    Column("batch_id", BigInteger, primary_key=True, autoincrement=False),
    Column("node", LargeBinary(20), nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("da_commitment", LargeBinary, nullable=False),
    Column("posted_at", BigInteger, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", LargeBinary(32), nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("verdict", String(24)),
    Column("detail", Text),
    Column("rebuilt_root", LargeBinary(32)),
    Column("tree", LargeBinary),
    Index("ix_batches_node", "node", "first_seq"),
    Index("ix_batches_block", "block_number"),
    Index("ix_batches_verdict", "verdict"),
)

#: distinct (model, adapter, datasets, weights) contexts; `profile_id` is derived from the content.
profiles = Table(
    "profiles", metadata,
    Column("profile_id", BigInteger, primary_key=True, autoincrement=False),
    Column("model_id", LargeBinary(32), nullable=False),
    Column("adapter_id", LargeBinary(32), nullable=False),
    Index("ix_profiles_adapter", "adapter_id"),
)

profile_datasets = Table(
    "profile_datasets", metadata,
    Column("profile_id", BigInteger, primary_key=True, autoincrement=False),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("dataset_id", LargeBinary(32), nullable=False),
    Column("weight_bps", Integer, nullable=False),
    Index("ix_profile_datasets_dataset", "dataset_id"),
)

#: records of batches whose payload decoded with a matching header (`ok` and `root_mismatch`).
records = Table(
    "records", metadata,
    Column("node", LargeBinary(20), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("batch_id", BigInteger, nullable=False),
    Column("profile_id", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("io_hash", LargeBinary(32), nullable=False),
    Column("leaf", LargeBinary(32), nullable=False),
    Column("tree_index", BigInteger, nullable=False),
    Index("ix_records_batch", "batch_id"),
    Index("ix_records_profile", "profile_id", "timestamp", "node", "seq"),
    Index("ix_records_timestamp", "timestamp", "node", "seq"),
)

#: every AssetRegistry event, decoded; registry state at a time is folded from these.
registry_events = Table(
    "registry_events", metadata,
    Column("block_number", BigInteger, primary_key=True, autoincrement=False),
    Column("log_index", Integer, primary_key=True, autoincrement=False),
    Column("block_hash", LargeBinary(32), nullable=False),
    Column("block_timestamp", BigInteger, nullable=False),
    Column("event", String(64), nullable=False),
    Column("args", Text, nullable=False),
)

#: every BatchDisputes event, decoded (`args` as JSON); a dispute's state is folded from its events
#: (`attribution.indexer.disputes`). `dispute_id`, `node` and `batch_id` are copied out of the arguments for the
#: look-ups (NULL where the event does not name one; batch id 0, "no batch", is NULL too).
dispute_events = Table(
    "dispute_events", metadata,
    Column("block_number", BigInteger, primary_key=True, autoincrement=False),
    Column("log_index", Integer, primary_key=True, autoincrement=False),
    Column("block_hash", LargeBinary(32), nullable=False),
    Column("block_timestamp", BigInteger, nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("event", String(64), nullable=False),
    Column("dispute_id", BigInteger),
    Column("node", LargeBinary(20)),
    Column("batch_id", BigInteger),
    Column("args", Text, nullable=False),
    Index("ix_dispute_events_dispute", "dispute_id"),
    Index("ix_dispute_events_node", "node"),
    Index("ix_dispute_events_batch", "batch_id"),
)
