"""record indexes carry the full listing order (timestamp, node, seq), so a LIMIT query reads one index range

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Recreate the profile and timestamp indexes of `records` with (node, seq) appended."""
    op.drop_index("ix_records_profile", table_name="records")
    op.drop_index("ix_records_timestamp", table_name="records")
    op.create_index("ix_records_profile", "records", ["profile_id", "timestamp", "node", "seq"])
    op.create_index("ix_records_timestamp", "records", ["timestamp", "node", "seq"])


def downgrade() -> None:
    """Back to the 0001 indexes."""
    op.drop_index("ix_records_profile", table_name="records")
    op.drop_index("ix_records_timestamp", table_name="records")
    op.create_index("ix_records_profile", "records", ["profile_id", "timestamp"])
    op.create_index("ix_records_timestamp", "records", ["timestamp"])
