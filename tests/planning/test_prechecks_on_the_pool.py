"""The checklist catches, through the real XenAPI client, what xapi finds only at the run:
its assert_can_migrate does not look at tools, blocked operations or networks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import XenAPI

from bot.models import Severity
from tests.support.engine_rig import Rig, rig_for
from tests.support.pool import Pool


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(pool, tmp_path)


def checks(rig: Rig, text: str) -> dict[str, tuple[Severity, str]]:
    preview = rig.engine.preview(rig.command(text))
    return {c.key: (c.severity, c.reason) for c in preview.checks}


def test_xapis_precheck_passes_what_the_run_refuses(pool: Pool) -> None:
    """The simulator is no stricter than xapi: assert_can_migrate accepts a VM without
    tools and a blocked migrate_send; migrate_send itself refuses both."""
    x, nfs2 = pool.x, pool.ref("SR", "nfs2")
    vm = pool.ref("VM", "legacy01")
    token = pool.receive(pool.ref("host", "host3"))
    vdi_map = {d: nfs2 for d in pool.disks(vm)}
    assert x.VM.assert_can_migrate(vm, token, True, vdi_map, {}, {}) == ""
    with pytest.raises(XenAPI.Failure) as failure:
        x.VM.migrate_send(vm, token, True, vdi_map, {}, {})
    assert failure.value.details[0] == "VM_LACKS_FEATURE"
    vm02 = pool.ref("VM", "vm02")
    x.VM.add_to_blocked_operations(vm02, "migrate_send", "backup window")
    vdi_map = {d: nfs2 for d in pool.disks(vm02)}
    assert x.VM.assert_can_migrate(vm02, token, True, vdi_map, {}, {}) == ""
    assert "migrate_send" not in x.VM.get_allowed_operations(vm02)


def test_a_blocked_operation_is_a_blocker_in_the_checklist(rig: Rig) -> None:
    """vm02's migrate_send is blocked: the checklist blocks, naming the reason."""
    x = rig.pool.x
    x.VM.add_to_blocked_operations(rig.pool.ref("VM", "vm02"), "migrate_send", "backup window")
    severity, reason = checks(rig, "vm02 to host3 sr=nfs2")["operations"]
    assert severity == Severity.BLOCKER and "backup window" in reason


def test_an_offline_move_to_a_host_without_the_vms_network_is_blocked(rig: Rig) -> None:
    """proxy01 is on dmz, which host3 lacks: blocked before anything is shut down (xapi's
    assert_can_boot_here cannot say it while the disks still move)."""
    found = checks(rig, "proxy01 to host3 sr=host3-local mode=offline")
    assert found["networks"] == (
        Severity.BLOCKER,
        "host3 has no PIF on network dmz: proxy01 cannot start there",
    )
    assert checks(rig, "proxy01 to host2")["networks"][0] == Severity.PASS
