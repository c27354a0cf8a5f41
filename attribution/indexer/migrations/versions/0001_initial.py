"""initial indexer schema: meta, blocks, batches, profiles, profile_datasets, records, registry_events

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table and index."""
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True),
                    sa.Column("value", sa.Text, nullable=False))
    op.create_table("blocks", sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
                    sa.Column("hash", sa.LargeBinary(32), nullable=False),
                    sa.Column("timestamp", sa.BigInteger, nullable=False))
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("node", sa.LargeBinary(20), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("da_commitment", sa.LargeBinary, nullable=False),
        sa.Column("posted_at", sa.BigInteger, nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("verdict", sa.String(24)),
        sa.Column("detail", sa.Text),
        sa.Column("rebuilt_root", sa.LargeBinary(32)),
        sa.Column("tree", sa.LargeBinary),
    )
    op.create_index("ix_batches_node", "batches", ["node", "first_seq"])
    op.create_index("ix_batches_block", "batches", ["block_number"])
    op.create_index("ix_batches_verdict", "batches", ["verdict"])
    op.create_table("profiles", sa.Column("profile_id", sa.BigInteger, primary_key=True, autoincrement=False),
                    sa.Column("model_id", sa.LargeBinary(32), nullable=False),
                    sa.Column("adapter_id", sa.LargeBinary(32), nullable=False))
    op.create_index("ix_profiles_adapter", "profiles", ["adapter_id"])
    op.create_table("profile_datasets",
                    sa.Column("profile_id", sa.BigInteger, primary_key=True, autoincrement=False),
                    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("dataset_id", sa.LargeBinary(32), nullable=False),
                    sa.Column("weight_bps", sa.Integer, nullable=False))
    op.create_index("ix_profile_datasets_dataset", "profile_datasets", ["dataset_id"])
    op.create_table(
        "records",
        sa.Column("node", sa.LargeBinary(20), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("batch_id", sa.BigInteger, nullable=False),
        sa.Column("profile_id", sa.BigInteger, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("io_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("leaf", sa.LargeBinary(32), nullable=False),
        sa.Column("tree_index", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_records_batch", "records", ["batch_id"])
    op.create_index("ix_records_profile", "records", ["profile_id", "timestamp"])
    op.create_index("ix_records_timestamp", "records", ["timestamp"])
    op.create_table(
        "registry_events",
        sa.Column("block_number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("log_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("block_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("args", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop everything."""
    for table in ("registry_events", "records", "profile_datasets", "profiles", "batches", "blocks", "meta"):
        op.drop_table(table)
