"""xapi error translation: plain sentences, next steps, and when an offline retry helps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.planning.explain import explain, names_for
from tests.support.factories import GiB, make_pool, make_vm, ref

VM = ref("vm01")
EMU = (
    'xenopsd internal error: Domain.Emu_manager_failure("Received error from emu-manager: '
    'xenguest Invalid argument")'
)

# Every migration-relevant code of xapi-notes.md §7, with parameters as xapi sends them.
KNOWN = [
    ["VM_BAD_POWER_STATE", VM, "running, halted", "suspended"],
    ["OTHER_OPERATION_IN_PROGRESS", "VM", VM, "migrate_send", "OpaqueRef:task"],
    ["HOST_NOT_ENOUGH_FREE_MEMORY", str(8 * GiB), str(2 * GiB)],
    ["VM_REQUIRES_SR", VM, ref("local-host1")],
    ["VM_REQUIRES_NETWORK", VM, "OpaqueRef:net"],
    ["VM_LACKS_FEATURE", VM],
    ["VM_MISSING_PV_DRIVERS", VM],
    ["VM_OLD_PV_DRIVERS", VM, "7", "1"],
    ["VM_IS_IMMOBILE", VM],
    ["VM_NON_SUSPENDABLE", VM, "PCI passthrough"],
    ["VM_HAS_PCI_ATTACHED", VM],
    ["VM_HAS_VGPU", VM],
    ["VM_HAS_VUSBS", VM],
    ["VM_IS_TEMPLATE", VM, "pool_migrate"],
    ["VM_IS_SNAPSHOT", VM, "pool_migrate"],
    ["VDI_CBT_ENABLED", "OpaqueRef:vdi"],
    ["VDI_IS_ENCRYPTED", "OpaqueRef:vdi"],
    ["VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION", "OpaqueRef:vdi"],
    ["VDI_IN_USE", "OpaqueRef:vdi", "mirror"],
    ["VDI_MISSING", ref("nfs1"), "OpaqueRef:vdi"],
    ["TOO_MANY_STORAGE_MIGRATES", "3"],
    ["TOO_MANY_PENDING_TASKS"],
    ["MIRROR_FAILED", "OpaqueRef:vdi"],
    ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""],
    ["SR_BACKEND_FAILURE_109", "", "The snapshot chain is too long", ""],
    ["SR_BACKEND_FAILURE_47", "", "The SR is not available", ""],
    ["SR_BACKEND_FAILURE", "1", "", "tapdisk failed"],
    ["SR_DOES_NOT_SUPPORT_MIGRATION", ref("nfs2"), "VDI_MIRROR"],
    ["SR_SOURCE_SPACE_INSUFFICIENT", ref("local-host1")],
    ["SUSPEND_IMAGE_NOT_ACCESSIBLE", "OpaqueRef:vdi"],
    ["UNIMPLEMENTED_IN_SM_BACKEND", "mirror"],
    ["VDI_IO_ERROR", "Device I/O errors"],
    ["VM_MIGRATE_FAILED", "uuid-vm", "uuid-h1", "uuid-h3", "The VM changed its power state"],
    ["VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED"],
    ["INTERNAL_ERROR", EMU],
    ["INTERNAL_ERROR", "Connection failed: stunnel"],
    ["TASK_CANCELLED", "OpaqueRef:task"],
    ["HOST_DISABLED", ref("host3")],
    ["HOST_OFFLINE", ref("host3")],
    ["HOST_NOT_LIVE"],
    ["HOST_STILL_BOOTING"],
    ["HOST_EVACUATE_IN_PROGRESS", ref("host3")],
    ["HOST_CANNOT_ATTACH_NETWORK", ref("host3"), "OpaqueRef:net"],
    ["HOST_NOT_ENOUGH_PCPUS", "16", "8"],
    ["CANNOT_CONTACT_HOST", "10.0.0.3"],
    ["VM_INCOMPATIBLE_WITH_THIS_HOST", VM, ref("host3"), "CPU features differ"],
    ["VM_HOST_INCOMPATIBLE_VERSION", ref("host3"), VM],
    ["NOT_SUPPORTED_DURING_UPGRADE"],
    ["OPERATION_BLOCKED", VM, "under maintenance"],
    ["OPERATION_NOT_ALLOWED", "VIF mapping is not allowed for intra-pool migration"],
    ["VDI_NOT_IN_MAP", "OpaqueRef:vdi"],
    ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"],
    ["VM_SHUTDOWN_TIMEOUT", VM, "1200."],
    ["VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT", VM],
    ["BALLOONING_TIMEOUT_BEFORE_MIGRATION", VM],
    ["VMS_FAILED_TO_COOPERATE"],
    ["NO_HOSTS_AVAILABLE"],
    ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"],
    ["SESSION_AUTHORIZATION_FAILED", "bot", "no role"],
    ["SESSION_INVALID", "OpaqueRef:session"],
    ["PERMISSION_DENIED", "not allowed"],
    ["RBAC_PERMISSION_DENIED", "vm.pool_migrate", "denied"],
    ["HOST_IS_SLAVE", "10.0.0.2"],
    ["HANDLE_INVALID", "VM", VM],
    ["UUID_INVALID", "VM", "1234"],
    ["LICENCE_RESTRICTION", "storage motion"],
]


@pytest.mark.parametrize("error", KNOWN, ids=lambda e: e[0])
def test_known_codes_get_their_own_words(error):
    """Each migration-relevant code has a specific sentence and a next step, fully filled in."""
    why = explain(error, names=names_for(make_pool(), make_vm()))
    assert why.code == error[0]
    assert not why.sentence.startswith("xapi refused with")
    assert why.next_step
    for text in (why.sentence, why.next_step):
        assert "{" not in text
        assert "?" not in text  # every placeholder found its param


def test_memory_figures_are_formatted_as_sizes():
    """HOST_NOT_ENOUGH_FREE_MEMORY shows needed and available in GiB, not raw bytes."""
    why = explain(["HOST_NOT_ENOUGH_FREE_MEMORY", str(8 * GiB), str(2 * GiB)])
    assert why.sentence == "The destination host has 2 GiB free, but the VM needs 8 GiB."


def test_power_states_read_as_alternatives():
    """VM_BAD_POWER_STATE's ', '-joined expectation reads 'running or halted'."""
    why = explain(["VM_BAD_POWER_STATE", VM, "running, halted", "suspended"], names={VM: "vm01"})
    assert why.sentence == "vm01 is suspended, but this operation needs it running or halted."


def test_shutdown_timeout_is_a_duration():
    """VM_SHUTDOWN_TIMEOUT's '1200.' seconds reads as 20 min."""
    assert "within 20 min" in explain(["VM_SHUTDOWN_TIMEOUT", VM, "1200."]).sentence


def test_names_replace_refs_and_uuids():
    """names_for lets sentences say host3 and vm01 rather than refs or UUIDs."""
    pool, vm = make_pool(), make_vm()
    error = ["VM_MIGRATE_FAILED", vm.uuid, pool.hosts[ref("host1")].uuid, ref("host3"), "x"]
    why = explain(error, names=names_for(pool, vm))
    assert why.sentence == "The live migration of vm01 from host1 to host3 failed (x)."


def test_names_for_labels_disks_as_the_request_shows_them():
    """Disk refs and UUIDs map to their '0 (xvda, ...)' label."""
    vm = make_vm()
    names = names_for(make_pool(), vm)
    assert names[vm.disks[0].vdi_ref] == names[vm.disks[0].vdi_uuid] == "0 (xvda, 'vm01 root')"


@pytest.mark.parametrize(
    "error",
    [
        ["VM_MIGRATE_FAILED", "a", "b", "c", "d"],
        ["INTERNAL_ERROR", EMU],
        ["MIRROR_FAILED", "OpaqueRef:vdi"],
        ["VM_LACKS_FEATURE", VM],
        ["VM_IS_IMMOBILE", VM],
    ],
    ids=lambda e: e[0],
)
def test_live_failures_an_offline_run_avoids_offer_retry_offline(error):
    """These live failures set retry_offline and lead the next step with Retry offline."""
    why = explain(error, live=True)
    assert why.retry_offline
    assert why.next_step.startswith("Retry offline")


@pytest.mark.parametrize(
    "error",
    [["VM_MIGRATE_FAILED", "a", "b", "c", "d"], ["MIRROR_FAILED", "x"], ["VM_LACKS_FEATURE", VM]],
    ids=lambda e: e[0],
)
def test_offline_runs_never_offer_retry_offline(error):
    """A run that was already offline gets neither the flag nor the words."""
    why = explain(error, live=False)
    assert not why.retry_offline
    assert "Retry offline" not in why.next_step


def test_lacking_tools_offline_means_hard_shutdown():
    """VM_LACKS_FEATURE from a clean shutdown points to shutdown=hard."""
    why = explain(["VM_LACKS_FEATURE", VM], live=False)
    assert "shutdown=hard" in why.next_step
    assert "shut itself down" in why.sentence


@pytest.mark.parametrize(
    "error",
    [
        ["INTERNAL_ERROR", "Connection failed"],
        ["HOST_DISABLED", "h"],
        ["TOO_MANY_STORAGE_MIGRATES"],
    ],
    ids=lambda e: e[0],
)
def test_other_failures_do_not_offer_retry_offline(error):
    """Failures an offline run would not fix leave retry_offline off."""
    assert not explain(error, live=True).retry_offline


def test_backend_failure_quotes_its_number_and_reason():
    """An SR_BACKEND_FAILURE_n without its own rule names n and SM's reason."""
    why = explain(["SR_BACKEND_FAILURE_47", "", "The SR is not available", ""])
    assert why.sentence == "The storage backend failed with error 47 (The SR is not available)."


def test_insufficient_space_backend_failure_is_about_space():
    """SR_BACKEND_FAILURE_44 says the storage ran out of space."""
    assert "ran out of space" in explain(["SR_BACKEND_FAILURE_44", "", "", ""]).sentence


def test_unknown_code_quotes_code_and_params():
    """An unknown code is quoted with its params so nothing is hidden."""
    why = explain(["SOMETHING_NEW", "a", "b"])
    assert why.sentence == "xapi refused with SOMETHING_NEW ('a', 'b')."
    assert why.next_step
    assert not why.retry_offline


@pytest.mark.parametrize(
    "error",
    [
        [],
        None,
        ["HOST_NOT_ENOUGH_FREE_MEMORY"],
        ["VM_MIGRATE_FAILED"],
        "VM_LACKS_FEATURE",
        [1, None],
    ],
)
def test_odd_input_never_raises(error):
    """Empty lists, missing params, a bare string or non-strings still give an Explanation."""
    why = explain(error)
    assert why.sentence
    assert why.next_step


def test_missing_params_show_a_placeholder():
    """A missing parameter reads as '?' instead of breaking the sentence."""
    sentence = explain(["HOST_NOT_ENOUGH_FREE_MEMORY"]).sentence
    assert sentence == "The destination host has ? free, but the VM needs ?."


def test_empty_error_says_there_was_no_code():
    """An empty ErrorDescription is reported as a failure without a code."""
    assert explain([]).sentence == "xapi reported a failure without an error code."


@given(st.lists(st.text(max_size=30), max_size=6), st.booleans())
def test_explain_is_total(error, live):
    """Whatever list of strings arrives, explain returns without raising."""
    assert explain(error, live=live).sentence


@given(st.sampled_from([e[0] for e in KNOWN]), st.lists(st.text(max_size=12), max_size=5))
def test_known_codes_survive_any_params(code, params):
    """Known codes with garbage or missing params still explain themselves."""
    assert explain([code, *params]).code == code
