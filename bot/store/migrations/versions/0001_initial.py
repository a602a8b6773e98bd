"""Requests, their steps and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The ACTIVE states as this revision knows them: a later change to the set needs a
# revision that recreates the index.
ONE_ACTIVE_PER_VM = "state IN ('approved', 'queued', 'running', 'scheduled', 'stuck')"


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("requester", sa.String, nullable=False),
        sa.Column("channel", sa.String),
        sa.Column("message_ts", sa.String),
        sa.Column("thread_ts", sa.String),
        sa.Column("command_text", sa.Text, nullable=False),
        sa.Column("vm_uuid", sa.String, nullable=False),
        sa.Column("vm_name", sa.String, nullable=False),
        sa.Column("dest_host_uuid", sa.String, nullable=False),
        sa.Column("dest_host_name", sa.String, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("shutdown", sa.String(16), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("run_at", sa.Double),
        sa.Column("approved_by", sa.String),
        sa.Column("approved_at", sa.Double),
        sa.Column(
            "parent_id",
            sa.Integer,
            sa.ForeignKey("requests.id", name="requests_parent_fk"),
        ),
        sa.Column("outcome", sa.Text),
        sa.Column("error", sa.JSON(none_as_null=True)),
        sa.Column("tags_added", sa.JSON, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sqlite_autoincrement=True,
    )
    op.create_index("requests_state", "requests", ["state"])
    op.create_index(
        "requests_one_active_per_vm",
        "requests",
        ["vm_uuid"],
        unique=True,
        sqlite_where=sa.text(ONE_ACTIVE_PER_VM),
        postgresql_where=sa.text(ONE_ACTIVE_PER_VM),
    )
    op.create_table(
        "steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("requests.id", name="steps_request_fk"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("task_ref", sa.String),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("progressed_at", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double),
        sa.Column("progress", sa.Double, nullable=False),
        sa.Column("error", sa.JSON(none_as_null=True)),
        sa.UniqueConstraint("request_id", "name", "attempt", name="steps_once"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("requests.id", name="audit_request_fk"),
        ),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("audit_request", "audit", ["request_id"])
    op.create_index("audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("steps")
    op.drop_index("requests_one_active_per_vm", table_name="requests")
    op.drop_index("requests_state", table_name="requests")
    op.drop_table("requests")
