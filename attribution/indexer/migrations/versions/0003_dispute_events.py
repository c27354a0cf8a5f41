"""dispute_events: every BatchDisputes event (issue 22)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `dispute_events` and its look-up indexes."""
    op.create_table(
        "dispute_events",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=True),
        sa.Column("node", sa.LargeBinary(length=20), nullable=True),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("args", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_dispute_events_dispute", "dispute_events", ["dispute_id"])
    op.create_index("ix_dispute_events_node", "dispute_events", ["node"])
    op.create_index("ix_dispute_events_batch", "dispute_events", ["batch_id"])


def downgrade() -> None:
    """Drop `dispute_events`."""
    op.drop_table("dispute_events")
