"""The store's tables: requests, the steps each run issued, the audit log (SQLAlchemy Core).

Alembic's migrations (`migrations/`) build exactly this schema; `migrations/env.py`
compares against it.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.settings import SINGLE
from bot.states import ACTIVE, FINISHED

METADATA = sa.MetaData()

REQUESTS = sa.Table(
    "requests",
    METADATA,
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
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("requests.id", name="requests_parent_fk")),
    sa.Column("outcome", sa.Text),
    sa.Column("error", sa.JSON(none_as_null=True)),
    sa.Column("tags_added", sa.JSON, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("announced", sa.String(16)),  # the last state the thread was told about
    sa.Column("shown_revision", sa.Integer),  # the revision the request message shows
    sa.Column("ended_by", sa.String),  # who rejected or cancelled it (a Slack user id)
    # "move" (one VM) or "batch" (many, each a child request naming it in batch_id)
    sa.Column("kind", sa.String(16), nullable=False, server_default="move"),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("requests.id", name="requests_batch_fk")),
    sa.Column("board_ts", sa.String),  # a batch's board in its thread
    # the pool the VM is in: its leader runs the request (`default`: the XEN_* pool)
    sa.Column("pool", sa.String(40), nullable=False, server_default=SINGLE),
    sa.Index("requests_state", "state"),
    sa.Index("requests_batch", "batch_id"),
    sa.Index("requests_pool_state", "pool", "state"),
    sqlite_autoincrement=True,  # a #42 shown in Slack never comes back for another request
)
ACTIVE_VALUES = sorted(state.value for state in ACTIVE)
FINISHED_VALUES = sorted(state.value for state in FINISHED)
sa.Index(
    "requests_one_active_per_vm",
    REQUESTS.c.vm_uuid,
    unique=True,
    sqlite_where=REQUESTS.c.state.in_(ACTIVE_VALUES),
    postgresql_where=REQUESTS.c.state.in_(ACTIVE_VALUES),
)

STEPS = sa.Table(
    "steps",
    METADATA,
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

AUDIT = sa.Table(
    "audit",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id", name="audit_request_fk")),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("audit_request", "request_id"),
    sa.Index("audit_at", "at"),
)
