"""Batches: a request that moves many VMs under one approval (`kind` "batch") and its
children, one request per VM (`batch_id` names the batch); `board_ts`, the batch's board
in its thread (edited again after a restart).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="move"))
        batch.add_column(sa.Column("batch_id", sa.Integer))
        batch.create_foreign_key("requests_batch_fk", "requests", ["batch_id"], ["id"])
        batch.add_column(sa.Column("board_ts", sa.String))
        batch.create_index("requests_batch", ["batch_id"])


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("requests_batch")
        batch.drop_constraint("requests_batch_fk", type_="foreignkey")
        batch.drop_column("board_ts")
        batch.drop_column("batch_id")
        batch.drop_column("kind")
