"""The classes and fields the simulator keeps, with xapi's names and wire defaults.

Each class lists its fields with a default in wire form (ints as strings, refs as
`OpaqueRef:NULL`, datetimes as `DateTime`); `WRITABLE` names the fields a client may set,
and `MAPS`/`SETS` the fields that have `add_to_`/`remove_from_` and `add_`/`remove_`
methods. Fields xapi has but a migration never reads are left out (a simplification the
README states); a `get_<field>` on one of those answers MESSAGE_METHOD_UNKNOWN.
"""

from __future__ import annotations

from typing import Any

from bot.simulator.wire import EPOCH, NULL_REF

N = NULL_REF

FIELDS: dict[str, dict[str, Any]] = {
    "session": {
        "this_host": N,
        "this_user": N,
        "last_active": EPOCH,
        "pool": False,
        "other_config": {},
        "is_local_superuser": True,
        "subject": N,
        "validation_time": EPOCH,
        "auth_user_sid": "",
        "auth_user_name": "",
        "rbac_permissions": [],
        "tasks": [],
        "parent": N,
        "originator": "",
        "client_certificate": False,
    },
    "pool": {
        "name_label": "",
        "name_description": "",
        "master": N,
        "default_SR": N,
        "suspend_image_SR": N,
        "crash_dump_SR": N,
        "ha_enabled": False,
        "migration_compression": False,
        "other_config": {},
        "allowed_operations": [],
        "current_operations": {},
        "tags": [],
    },
    "host": {
        "name_label": "",
        "name_description": "",
        "hostname": "",
        "address": "",
        "enabled": True,
        "metrics": N,
        "resident_VMs": [],
        "API_version_major": "2",
        "API_version_minor": "21",
        "API_version_vendor": "XenSource",
        # xapi 24.19.2: XCP-ng 8.3 as released; older than 25.31.0, so no
        # `host.disable(host, auto_enable)` (a scenario's `xapi:` may name a later one)
        "software_version": {
            "product_brand": "XCP-ng",
            "product_version": "8.3.0",
            "xapi": "24.19.2",
        },
        "memory_overhead": "0",
        "PBDs": [],
        "PIFs": [],
        "host_CPUs": [],
        "suspend_image_sr": N,
        "crash_dump_sr": N,
        "other_config": {},
        "allowed_operations": ["provision", "evacuate", "vm_start", "vm_resume", "vm_migrate"],
        "current_operations": {},
        "tags": [],
    },
    "host_metrics": {
        "memory_total": "0",
        "memory_free": "0",
        "live": True,
        "last_updated": EPOCH,
        "other_config": {},
    },
    "SR": {
        "name_label": "",
        "name_description": "",
        "type": "nfs",
        "content_type": "user",
        "shared": True,
        "physical_size": "0",
        "physical_utilisation": "0",
        "virtual_allocation": "0",
        "PBDs": [],
        "VDIs": [],
        "sm_config": {},
        "other_config": {},
        "allowed_operations": [],
        "current_operations": {},
        "tags": [],
    },
    "PBD": {
        "host": N,
        "SR": N,
        "currently_attached": True,
        "device_config": {},
        "other_config": {},
    },
    "network": {
        "name_label": "",
        "name_description": "",
        "bridge": "",
        "PIFs": [],
        "VIFs": [],
        "other_config": {},
    },
    "PIF": {
        "host": N,
        "network": N,
        "device": "eth0",
        "management": True,
        "IP": "",
        "currently_attached": True,
        "other_config": {},
    },
    "VDI": {
        "name_label": "",
        "name_description": "",
        "SR": N,
        "VBDs": [],
        "virtual_size": "0",
        "physical_utilisation": "0",
        "type": "user",
        "sharable": False,
        "read_only": False,
        "is_a_snapshot": False,
        "snapshot_of": N,
        "snapshots": [],
        "snapshot_time": EPOCH,
        "cbt_enabled": False,
        "on_boot": "persist",
        "sm_config": {},
        "location": "",
        "managed": True,
        "missing": False,
        "allowed_operations": [],
        "current_operations": {},
        "other_config": {},
        "tags": [],
    },
    "VBD": {
        "VM": N,
        "VDI": N,
        "type": "Disk",
        "mode": "RW",
        "empty": False,
        "currently_attached": False,
        "userdevice": "0",
        "device": "",
        "bootable": False,
        "allowed_operations": [],
        "current_operations": {},
        "other_config": {},
    },
    "VIF": {
        "VM": N,
        "network": N,
        "device": "0",
        "MAC": "",
        "currently_attached": False,
        "other_config": {},
    },
    "VM": {
        "name_label": "",
        "name_description": "",
        "power_state": "Halted",
        "is_a_template": False,
        "is_default_template": False,
        "is_a_snapshot": False,
        "snapshot_of": N,
        "snapshots": [],
        "snapshot_time": EPOCH,
        "is_control_domain": False,
        "resident_on": N,
        "scheduled_to_be_resident_on": N,
        "affinity": N,
        "memory_overhead": "0",
        "memory_target": "0",
        "memory_static_max": "0",
        "memory_dynamic_max": "0",
        "memory_dynamic_min": "0",
        "memory_static_min": "0",
        "VCPUs_params": {},
        "VCPUs_max": "1",
        "VCPUs_at_startup": "1",
        "domid": "-1",
        "VBDs": [],
        "VIFs": [],
        "VGPUs": [],
        "attached_PCIs": [],
        "VUSBs": [],
        "metrics": N,
        "guest_metrics": N,
        "platform": {},
        "other_config": {},
        "tags": [],
        "blocked_operations": {},
        "allowed_operations": [],
        "current_operations": {},
        "suspend_VDI": N,
        "suspend_SR": N,
        "domain_type": "hvm",
        "appliance": N,
        "ha_restart_priority": "",
        "HVM_boot_policy": "BIOS order",
        "PV_bootloader": "",
    },
    "VM_metrics": {
        "memory_actual": "0",
        "VCPUs_number": "0",
        "VCPUs_utilisation": {},
        "VCPUs_CPU": {},
        "start_time": EPOCH,
        "last_updated": EPOCH,
        "state": [],
        "nomigrate": False,
        "nested_virt": False,
        "hvm": True,
        "current_domain_type": "unspecified",
        "other_config": {},
    },
    "VM_guest_metrics": {
        "os_version": {},
        "PV_drivers_version": {},
        "PV_drivers_up_to_date": False,
        "PV_drivers_detected": False,
        "networks": {},
        "other": {},
        "live": True,
        "can_use_hotplug_vbd": "unspecified",
        "can_use_hotplug_vif": "unspecified",
        "memory": {},
        "disks": {},
        "last_updated": EPOCH,
        "other_config": {},
    },
    "task": {
        "name_label": "",
        "name_description": "",
        "allowed_operations": [],
        "current_operations": {},
        "created": EPOCH,
        "finished": EPOCH,
        "status": "pending",
        "resident_on": N,
        "progress": 0.0,
        "type": "<none/>",
        "result": "",
        "error_info": [],
        "other_config": {},
        "subtask_of": N,
        "subtasks": [],
        "backtrace": "()",
    },
}

# Fields xapi added after the oldest release the bot supports, with the API version that
# brought them: an older pool has neither the field in its records nor its getter (XenServer
# 7.1 answers VDI.get_cbt_enabled with MESSAGE_METHOD_UNKNOWN; XO CHANGELOG, PR #8038).
SINCE: dict[tuple[str, str], tuple[int, int]] = {("VDI", "cbt_enabled"): (2, 8)}


def lacking(api: tuple[int, int]) -> dict[str, frozenset[str]]:
    """Per class, the fields a pool of API version `api` does not have."""
    fields: dict[str, set[str]] = {}
    for (cls, field), since in SINCE.items():
        if api < since:
            fields.setdefault(cls, set()).add(field)
    return {cls: frozenset(names) for cls, names in fields.items()}


WRITABLE: dict[str, set[str]] = {
    "VM": {
        "name_label",
        "name_description",
        "other_config",
        "tags",
        "affinity",
        "blocked_operations",
    },
    "host": {"name_label", "name_description", "other_config", "tags"},
    "SR": {"name_label", "name_description", "other_config", "tags"},
    "VDI": {"name_label", "name_description", "other_config", "tags"},
    "pool": {"name_label", "name_description", "other_config", "tags", "default_SR"},
    "task": {"other_config", "progress", "status", "result", "error_info"},
    "network": {"name_label", "other_config"},
}

MAPS: dict[str, set[str]] = {
    cls: {f for f in fields if f == "other_config" or f == "blocked_operations"}
    for cls, fields in WRITABLE.items()
}
SETS: dict[str, set[str]] = {cls: {"tags"} & fields for cls, fields in WRITABLE.items()}

# Classes whose records carry a name_label, so get_by_name_label exists for them.
NAMED = {cls for cls, fields in FIELDS.items() if "name_label" in fields}

# xapi's class names; event.from and valid_ref_counts use them lowercased.
CLASSES = tuple(FIELDS)

# Classes with the public `get_all`, `get_all_records` and `get_all_records_where` (the
# last hidden from the docs but served): xapi's `expose_get_all_messages_for`
# (`ocaml/idl/datamodel.ml`), which leaves out session (and event). There is no
# `get_all_where` on the wire: `ocaml/idl/datamodel_utils.ml` generates only those three.
EXPOSED = frozenset(CLASSES) - {"session"}
BY_LOWER = {cls.lower(): cls for cls in CLASSES}
