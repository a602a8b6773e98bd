"""Several pools: each request names the pool it moves a VM in (`default`: the one pool
the `XEN_*` settings describe, so requests filed before this revision keep theirs).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("pool", sa.String(40), nullable=False, server_default="default"))
        batch.create_index("requests_pool_state", ["pool", "state"])


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("requests_pool_state")
        batch.drop_column("pool")
