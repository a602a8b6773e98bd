"""What the request message shows: the revision of its last successful post or edit.

A restarted bot edits every request message older than its request, finished ones
included (an edit still queued at a stop left a finished request showing "running").
Existing requests count as shown.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("shown_revision", sa.Integer))  # plain ALTER TABLE
    op.execute("UPDATE requests SET shown_revision = revision")


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("shown_revision")
