"""A request's disk plan is keyed by the disk's place in the VM (VBD userdevice).

Storage motion gives every moved disk a new VDI (new ref, new uuid), so a plan keyed by
VDI uuid could not be found after the copy. Stored plans are rewritten: the summary lists
the disks in the intent's order, each label starting with its userdevice ("0 (xvda, …)").

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def rekeyed(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with `disk_srs` keyed by userdevice (unchanged when it already is)."""
    intent, disks = plan.get("intent", {}), plan.get("summary", {}).get("disks", [])
    by_vdi = intent.get("disk_srs", {})
    devices = [str(d.get("label", "")).split(" ", 1)[0] for d in disks]
    if not by_vdi or len(devices) != len(by_vdi) or list(by_vdi) == devices:
        return plan
    disk_srs = dict(zip(devices, by_vdi.values(), strict=True))
    return {**plan, "intent": {**intent, "disk_srs": disk_srs}}


def upgrade() -> None:
    requests = sa.table("requests", sa.column("id", sa.Integer), sa.column("plan", sa.JSON))
    bind = op.get_bind()
    for row in bind.execute(sa.select(requests.c.id, requests.c.plan)).all():
        plan = row.plan if isinstance(row.plan, dict) else json.loads(row.plan)
        new = rekeyed(plan)
        if new != plan:
            bind.execute(requests.update().where(requests.c.id == row.id).values(plan=new))


def downgrade() -> None:
    """Nothing to undo that an older bot could use: VDI uuids of moved disks are gone."""
