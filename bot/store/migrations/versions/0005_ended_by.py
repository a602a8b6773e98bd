"""Who ended a request (rejected or cancelled it), so messages mention that person from the
record instead of fishing a user id out of the outcome's words.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("ended_by", sa.String))  # plain ALTER TABLE


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("ended_by")
