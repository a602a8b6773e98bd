"""host.disable / host.enable as xapi does them: what a disabled host refuses, what its
allowed_operations say, what a toolstack restart does to it, per xapi release."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import XenAPI

from bot.simulator.control import control
from bot.simulator.scenario import read
from tests.support.pool import Pool, scenario_pool

ENABLED = ["provision", "evacuate", "vm_start", "vm_resume", "vm_migrate"]
DISABLED = ["provision", "evacuate", "reboot", "shutdown", "vm_start", "vm_resume", "vm_migrate"]


def _failure(call) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(XenAPI.Failure) as failure:
        call()
    return failure.value.details


def _restart(pool: Pool, host: str) -> XenAPI.Session:
    pool.x.host.restart_agent(host)
    pool.clock.advance(pool.sim.timing.agent_down_s + 1)
    return pool.login()


@pytest.fixture
def newer() -> Iterator[Pool]:
    """The demo pool on xapi 25.31.0, whose host.disable takes `auto_enable`."""
    release = {
        "API_version": [2, 21],
        "software_version": {
            "product_brand": "XCP-ng",
            "product_version": "8.3.0",
            "xapi": "25.31.0",
        },
    }
    yield from scenario_pool({**read("demo"), "xapi": release, "timing": {}})


def test_a_disabled_host_takes_no_new_vm(pool: Pool) -> None:
    """assert_can_boot_here, start_on, pool_migrate, migrate_send and assert_can_migrate to
    a disabled host fail HOST_DISABLED [host]; VM.start picks another host, and with every
    host disabled there is none (NO_HOSTS_AVAILABLE). VMs already on it keep running."""
    x = pool.x
    host3 = pool.ref("host", "host3")
    assert x.host.disable(host3) == ""
    assert x.host.get_enabled(host3) is False
    vm02, archive = pool.ref("VM", "vm02"), pool.ref("VM", "archive01")
    disabled = ["HOST_DISABLED", host3]
    assert _failure(lambda: x.VM.assert_can_boot_here(vm02, host3)) == disabled
    assert _failure(lambda: x.VM.start_on(archive, host3, False, False)) == disabled
    assert pool.run(x.Async.VM.pool_migrate(vm02, host3, {}))["error_info"] == disabled
    nfs2 = pool.ref("SR", "nfs2")
    vdi_map = {d: nfs2 for d in pool.disks(vm02)}
    token = pool.receive(host3)
    assert _failure(lambda: x.VM.assert_can_migrate(vm02, token, True, vdi_map, {}, {})) == disabled
    task = x.Async.VM.migrate_send(vm02, token, True, vdi_map, {}, {})
    assert pool.run(task)["error_info"] == disabled
    legacy = pool.ref("VM", "legacy01")  # resident on host3: untouched
    assert x.VM.get_power_state(legacy) == "Running" and x.VM.get_resident_on(legacy) == host3
    x.VM.set_affinity(archive, host3)
    assert pool.run(x.Async.VM.start(archive, False, False))["status"] == "success"
    assert x.VM.get_resident_on(archive) not in (host3, "OpaqueRef:NULL")
    assert pool.run(x.Async.VM.hard_shutdown(archive))["status"] == "success"
    for host in x.host.get_all():
        x.host.disable(host)
    assert pool.run(x.Async.VM.start(archive, False, False))["error_info"] == ["NO_HOSTS_AVAILABLE"]


def test_disable_checks_little(pool: Pool) -> None:
    """xapi checks neither the master, nor operations in progress, nor a second disable;
    enable on an enabled host is no error either. Both have an Async form."""
    x = pool.x
    master = pool.ref("host", "host1")
    x.host.disable(master)
    x.host.disable(master)
    assert x.host.get_enabled(master) is False
    x.host.enable(master)
    x.host.enable(master)
    assert x.host.get_enabled(master) is True
    host3 = pool.ref("host", "host3")
    pool.sim.timing.memory_bytes_per_s = 1e7  # the move outlasts the disable
    move = x.Async.VM.pool_migrate(pool.ref("VM", "vm02"), host3, {})
    assert list(x.host.get_current_operations(host3).values()) == ["vm_migrate"]
    task = x.Async.host.disable(host3)
    assert pool.run(task)["status"] == "success" and x.host.get_enabled(host3) is False
    assert pool.run(move, step=10)["status"] == "success"  # reserved before: it lands


def test_allowed_operations_follow_enabled_and_current_operations(pool: Pool) -> None:
    """An enabled idle host allows provision, evacuate, vm_start, vm_resume, vm_migrate; a
    disabled one reboot and shutdown too (`xapi_host_helpers.ml`); while a VM moves in
    (vm_migrate), nothing that takes VMs away (evacuate, reboot, shutdown)."""
    x = pool.x
    host2, host3 = pool.ref("host", "host2"), pool.ref("host", "host3")
    assert x.host.get_allowed_operations(host3) == ENABLED
    x.host.disable(host3)
    assert x.host.get_allowed_operations(host3) == DISABLED
    x.host.enable(host3)
    assert x.host.get_allowed_operations(host3) == ENABLED
    pool.sim.timing.memory_bytes_per_s = 1e7
    move = x.Async.VM.pool_migrate(pool.ref("VM", "vm02"), host3, {})
    assert x.task.get_status(move) == "pending"
    arriving = ["provision", "vm_start", "vm_resume", "vm_migrate"]
    assert x.host.get_allowed_operations(host3) == arriving
    x.host.disable(host3)
    assert x.host.get_allowed_operations(host3) == arriving
    assert pool.run(move, step=10)["status"] == "success"
    assert x.host.get_allowed_operations(host3) == DISABLED
    assert x.host.get_allowed_operations(host2) == ENABLED


def test_an_unreachable_member_cannot_be_disabled(pool: Pool) -> None:
    """A call about a member runs on it: while its agent restarts, or while it does not
    answer, the master says CANNOT_CONTACT_HOST [host]."""
    x = pool.x
    host2, host3 = pool.ref("host", "host2"), pool.ref("host", "host3")
    x.host.restart_agent(host3)
    assert _failure(lambda: x.host.disable(host3)) == ["CANNOT_CONTACT_HOST", host3]
    assert _failure(lambda: x.host.enable(host3)) == ["CANNOT_CONTACT_HOST", host3]
    assert _failure(lambda: x.host.restart_agent(host3)) == ["CANNOT_CONTACT_HOST", host3]
    pool.sim.faults.set_host_down(x.host.get_address(host2))
    assert _failure(lambda: x.host.disable(host2)) == ["CANNOT_CONTACT_HOST", host2]


def test_ha_can_refuse_a_disable(pool: Pool) -> None:
    """With HA on, xapi refuses a disable that would break the failover plan
    (`faults.ha_plan_breaks` says it would); with HA off the plan does not matter."""
    x = pool.x
    host3 = pool.ref("host", "host3")
    control(pool.sim, {"fault": "ha_plan_breaks"})
    x.host.disable(host3)
    x.host.enable(host3)
    pool.sim.db.update("pool", pool.sim.pool_ref, ha_enabled=True)
    assert _failure(lambda: x.host.disable(host3)) == ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"]
    assert x.host.get_enabled(host3) is True


def test_a_toolstack_restart_enables_a_disabled_host_again(pool: Pool) -> None:
    """host.disable lives in the host's xapi process: restarting that host's agent forgets
    it and the host enables itself again; restarting another host (the master) leaves it
    disabled. With HA on and a PBD of its unplugged, it stays disabled."""
    host2, host3 = pool.ref("host", "host2"), pool.ref("host", "host3")
    pool.x.host.disable(host3)
    x = _restart(pool, pool.ref("host", "host1")).xenapi
    assert x.host.get_enabled(host3) is False
    assert x.host.get_enabled(pool.ref("host", "host1")) is True
    x = _restart(pool, host3).xenapi
    assert x.host.get_enabled(host3) is True
    assert x.host.get_allowed_operations(host3) == ENABLED
    sim = pool.sim
    sim.db.update("pool", sim.pool_ref, ha_enabled=True)
    sim.db.update("PBD", sim.db.get("host", host2)["PBDs"][0], currently_attached=False)
    x.host.disable(host2)
    x = _restart(pool, host2).xenapi
    assert x.host.get_enabled(host2) is False


def test_before_xapi_25_31_disable_takes_one_parameter(pool: Pool) -> None:
    """The default pool's xapi (24.19.2) has no `auto_enable`: a second parameter is
    MESSAGE_PARAMETER_COUNT_MISMATCH, and the host is left enabled."""
    host3 = pool.ref("host", "host3")
    assert pool.x.host.get_software_version(host3)["xapi"] == "24.19.2"
    assert _failure(lambda: pool.x.host.disable(host3, False)) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "host.disable",
        "1",
        "2",
    ]
    assert pool.x.host.get_enabled(host3) is True


def test_auto_enable_false_keeps_a_host_disabled_across_restarts(newer: Pool) -> None:
    """xapi 25.31.0: host.disable(host, false) keeps the host disabled through its agent's
    restarts until host.enable; host.disable(host) (auto_enable true) does not."""
    x = newer.x
    host3 = newer.ref("host", "host3")
    x.host.disable(host3, False)
    x = _restart(newer, host3).xenapi
    assert x.host.get_enabled(host3) is False
    x = _restart(newer, host3).xenapi
    assert x.host.get_enabled(host3) is False
    x.host.enable(host3)
    x.host.disable(host3)
    x = _restart(newer, host3).xenapi
    assert x.host.get_enabled(host3) is True
    x.host.disable(host3, False)
    x.host.disable(host3, True)  # the last word counts
    x = _restart(newer, host3).xenapi
    assert x.host.get_enabled(host3) is True
    assert _failure(lambda: x.host.disable(host3, "false"))[0] == "INTERNAL_ERROR"
    assert _failure(lambda: x.host.disable(host3, False, 1))[0] == (
        "MESSAGE_PARAMETER_COUNT_MISMATCH"
    )


@pytest.fixture
def paused() -> Iterator[Pool]:
    """host1 holds a Paused VM and a Suspended one (both with a disk on shared storage)."""
    data = {
        "hosts": [{"name": "host1", "master": True}, {"name": "host2"}],
        "srs": [{"name": "nfs"}],
        "vms": [
            {"name": name, "host": "host1", "power": power, "disks": [{"sr": "nfs"}]}
            for name, power in (("paused", "Paused"), ("suspended", "Suspended"))
        ],
    }
    yield from scenario_pool(data)


def test_what_an_evacuation_finds_on_a_host(paused: Pool) -> None:
    """A Paused VM is resident on its host (and cannot pool_migrate: Running only); a
    Suspended one is resident nowhere (`xapi_vm_lifecycle.ml` force_state_reset), so the
    evacuation query does not find it; the control domain is there."""
    x = paused.x
    host1, host2 = paused.ref("host", "host1"), paused.ref("host", "host2")
    vm_paused, vm_suspended = paused.ref("VM", "paused"), paused.ref("VM", "suspended")
    assert x.VM.get_resident_on(vm_suspended) == "OpaqueRef:NULL"
    assert x.VM.get_domid(vm_suspended) == "-1"
    found = x.VM.get_all_records_where(
        f'field "resident_on" = "{host1}" or field "affinity" = "{host1}"'
    )
    assert vm_paused in found and vm_suspended not in found
    assert [r["is_control_domain"] for r in found.values()].count(True) == 1
    assert set(x.host.get_resident_VMs(host1)) == set(found)
    moved = paused.run(x.Async.VM.pool_migrate(vm_paused, host2, {}))
    assert moved["error_info"] == ["VM_BAD_POWER_STATE", vm_paused, "running", "paused"]
    assert paused.run(x.Async.VM.hard_shutdown(vm_suspended))["status"] == "success"
    assert x.VM.get_power_state(vm_suspended) == "Halted"
