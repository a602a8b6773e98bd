"""What Slack has been told: the last state whose news reached the request's thread.

A restarted bot compares it with the state and posts what was lost (an outcome that
could not be posted before a crash or a Slack outage). Existing requests count as told.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("announced", sa.String(16)))  # plain ALTER TABLE
    op.execute("UPDATE requests SET announced = state")


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("announced")
