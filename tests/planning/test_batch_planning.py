"""Batches planned against the demo pool through the real XenAPI client: the subject read in
bulk, placement, each move's checklist, the grouped summary, and a stored batch checked
again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.errors import UserError
from bot.planning.batch import BatchPreview
from bot.planning.batch_planner import BatchPlanner
from bot.planning.command import BatchCommand, parse
from bot.planning.planner import Planner, PlannerConfig
from bot.xen.connection import Xapi, XenConfig
from tests.support.pool import Pool


@pytest.fixture
def planner(pool: Pool) -> Iterator[BatchPlanner]:
    xapi = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=10))
    yield BatchPlanner(Planner(xapi, PlannerConfig(throughput_mbps=200)), slots=3)
    xapi.close()


def batch(planner: BatchPlanner, text: str) -> BatchPreview:
    command = parse(text)
    assert isinstance(command, BatchCommand), command
    return planner.preview(command)


def moves(preview: BatchPreview) -> dict[str, str]:
    return {row["vm"]: row["dest"] for row in preview.moves()}


def test_evacuating_host1_places_what_fits_and_blocks_on_what_does_not(
    planner: BatchPlanner,
) -> None:
    """host1 runs vm01 (disks on host1's local SR), web, bigdb (96 GiB), proxy01 (dmz,
    which only host1 and host2 have) and monitor01; its control domain is not a VM."""
    preview = batch(planner, "evacuate host1")
    assert preview.subject == "evacuate host1"
    assert moves(preview) == {"web": "host2", "proxy01": "host2", "monitor01": "host3"}
    blockers = {a.vm: a.why for a in preview.left if a.blocks}
    assert set(blockers) == {"bigdb", "vm01"}
    assert blockers["bigdb"].startswith(
        "bigdb (96.8 GiB) fits on no host (host2: 33.8 GiB free; host3: 37.8 GiB free). "
        "Free 59 GiB on host3"
    )
    assert blockers["bigdb"].endswith(
        "(move or stop a VM there), or shut it down for the maintenance (a halted VM is not "
        "in the way)"
    )
    assert "no access to host1-local" in blockers["vm01"]
    assert preview.blocked
    groups = preview.summary()["groups"]
    assert [g["severity"] for g in groups[:2]] == ["blocker", "blocker"]


def test_sr_moves_local_disks_and_the_plan_is_stored_by_uuid(
    planner: BatchPlanner, pool: Pool
) -> None:
    preview = batch(planner, "evacuate host1 to host2,host3 sr=nfs2")
    assert "vm01" in moves(preview)
    row = next(r for r in preview.stored()["batch"]["rows"] if r["vm"] == "vm01")
    vm01 = pool.x.VM.get_record(pool.ref("VM", "vm01"))
    assert row["intent"]["vm_uuid"] == vm01["uuid"]
    nfs2 = pool.x.SR.get_uuid(pool.ref("SR", "nfs2"))
    assert set(row["intent"]["disk_srs"].values()) == {nfs2}
    assert parse(row["command"]) == parse(
        f"{vm01['uuid']} to {moves(preview)['vm01']} sr=nfs2 mode=live"
    )


def test_a_list_and_a_tag_name_their_vms(planner: BatchPlanner) -> None:
    preview = batch(planner, "vm02,dns01,mail01 to host1")
    assert moves(preview) == {"vm02": "host1", "dns01": "host1", "mail01": "host1"}
    assert not preview.blocked
    tagged = batch(planner, "tag:xo:no-bak to host2")
    assert moves(tagged) == {"monitor01": "host2"}


def test_names_that_miss_say_so_with_suggestions(planner: BatchPlanner) -> None:
    with pytest.raises(UserError, match="no VM 'vm0l'; did you mean vm01"):
        batch(planner, "vm0l,vm02 to host3")
    with pytest.raises(UserError, match="No VM has the tag 'xo:nobak'; did you mean tag:xo:no-bak"):
        batch(planner, "tag:xo:nobak")
    with pytest.raises(UserError, match="host1 is the host to empty"):
        batch(planner, "evacuate host1 to host1,host2")


def test_a_vm_already_where_it_should_be_is_left_alone(planner: BatchPlanner) -> None:
    preview = batch(planner, "vm02,dns02 to host2")
    assert moves(preview) == {"dns02": "host2"}
    assert [(a.vm, a.blocks) for a in preview.left] == [("vm02", False)]
    with pytest.raises(UserError, match="Nothing to move: vm02 is on host2 already"):
        batch(planner, "vm02,dns01 to host2")


def test_warnings_are_grouped_with_their_vms(planner: BatchPlanner) -> None:
    preview = batch(planner, "vm02,dns01,mail01,dns02 to host1")
    backup = next(g for g in preview.summary()["groups"] if g["title"] == "Backups")
    # vm02 is excluded already
    assert backup["reason"] == "3 VMs are not excluded from backup: mail01, dns01, dns02"
    assert backup["count"] == 3 and backup["action"] == "exclude_backup"


def test_a_stored_batch_is_checked_again_move_by_move(planner: BatchPlanner, pool: Pool) -> None:
    text = "vm02,dns01,mail01 to host1"
    preview = batch(planner, text)
    again = planner.recheck(text, preview.stored())
    assert moves(again) == moves(preview) and not again.blocked
    pool.run(pool.x.Async.VM.hard_shutdown(pool.ref("VM", "mail01")))  # no longer live-able
    changed = planner.recheck(text, preview.stored())
    assert changed.blocked
    dns01 = pool.ref("VM", "dns01")
    pool.run(pool.x.Async.VM.hard_shutdown(dns01))
    pool.x.VM.destroy(dns01)
    gone = planner.recheck(text, preview.stored())
    assert any(a.vm == "dns01" and a.blocks and "no longer exists" in a.why for a in gone.left)
