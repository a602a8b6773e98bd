"""The engine's port to the pool: typed records in and out, never a raw XAPI dict.

VMs and hosts are named by uuid (a ref is not promised to outlive a session, a VDI does
not outlive a storage copy); long operations answer their task ref and `wait_task` their
end. Failures are `XapiFailure` (xapi said no) and `XapiUnavailable` (no answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import XenAPI

from bot.models import BootOption, GuestAgent, HostLoad, Leftover, Plan, VMState
from bot.xen import ops
from bot.xen.connection import Xapi
from bot.xen.watch import TaskWatcher

T = TypeVar("T")


@dataclass(frozen=True)
class TaskEnd:
    """How a task ended ("pending": the wait was given up) and xapi's error, if any."""

    status: Literal["pending", "success", "failure", "cancelled"]
    error: list[str]


class Xen:
    def __init__(self, xapi: Xapi, watcher: TaskWatcher) -> None:
        self._xapi = xapi
        self._watcher = watcher
        self._vm_refs: dict[str, str] = {}  # uuid -> ref: a VM keeps its ref as it moves

    @property
    def answered(self) -> int:
        """Calls the master has answered so far: a silence starts when this stops moving."""
        return self._xapi.stats.answered

    def _on_vm(self, vm: str, fn: Callable[[Any, str], T]) -> T:
        """`fn(x, ref)` on the VM with this uuid. Its ref is looked up once and kept (a VM
        keeps its ref as it moves, so a run does not ask again at every step); a ref xapi
        no longer knows is looked up afresh, so a VM that is gone fails as the lookup does
        (UUID_INVALID), and a call refused for it issued nothing to repeat."""

        def call(x: Any) -> T:
            cached = self._vm_refs.get(vm)
            if cached is not None:
                try:
                    return fn(x, cached)
                except XenAPI.Failure as failure:
                    if failure.details[:1] != ["HANDLE_INVALID"]:
                        raise
                    self._vm_refs.pop(vm, None)
            ref = ops.vm_ref(x, vm)
            self._vm_refs[vm] = ref
            return fn(x, ref)

        return self._xapi.call(call)

    # -- what is there --------------------------------------------------------------------
    def vm_state(self, vm: str) -> VMState:
        return self._on_vm(vm, ops.vm_state)

    def guest_agent(self, vm: str) -> GuestAgent:
        return self._on_vm(vm, ops.guest_agent)

    def boot_options(self, vm: str, preferred: list[str]) -> list[BootOption]:
        return self._on_vm(vm, lambda x, ref: ops.boot_options(x, ref, preferred))

    def leftovers(self, vm: str, hosts: list[str], own_tasks: set[str]) -> list[Leftover]:
        return self._on_vm(vm, lambda x, ref: ops.leftovers(x, ref, hosts, own_tasks))

    def host_loads(self) -> list[HostLoad]:
        return self._xapi.call(ops.host_loads)

    def ha_enabled(self) -> bool:
        return self._xapi.call(ops.ha_enabled)

    def agent_start_time(self, host: str) -> float:
        return self._xapi.call(lambda x: ops.agent_start_time(x, host))

    def agent_back(self, host: str, before: float) -> bool:
        return self._xapi.call(lambda x: ops.agent_back(x, host, before))

    def task_host_name(self, task: str) -> str:
        return self._xapi.call(lambda x: ops.task_host_name(x, task))

    # -- what the bot does ----------------------------------------------------------------
    def shutdown(self, vm: str, hard: bool) -> str:
        return self._on_vm(vm, lambda x, ref: ops.start_shutdown(x, ref, hard))

    def migrate(self, plan: Plan) -> str:
        return self._xapi.call(lambda x: ops.start_migration(x, plan))

    def start_on(self, vm: str, host: str) -> str:
        return self._on_vm(vm, lambda x, ref: ops.start_on(x, ref, ops.host_ref(x, host)))

    def set_affinity(self, vm: str, host: str) -> None:
        self._on_vm(vm, lambda x, ref: ops.set_affinity(x, ref, ops.host_ref(x, host)))

    def add_tag(self, vm: str, tag: str) -> None:
        self._on_vm(vm, lambda x, ref: ops.add_tag(x, ref, tag))

    def remove_tag(self, vm: str, tag: str) -> None:
        self._on_vm(vm, lambda x, ref: ops.remove_tag(x, ref, tag))

    def destroy_snapshot_vm(self, snapshot_ref: str) -> None:
        """VM.destroy of a snapshot keeps its disks: `destroy_vdi` each one it owned."""
        self._xapi.call(lambda x: ops.destroy_vm(x, snapshot_ref))

    def destroy_vdi(self, vdi_ref: str) -> None:
        self._xapi.call(lambda x: ops.destroy_vdi(x, vdi_ref))

    def host_enabled(self, host: str) -> bool:
        return self._xapi.call(lambda x: ops.host_enabled(x, ops.host_ref(x, host)))

    def set_host_enabled(self, host: str, enabled: bool) -> None:
        self._xapi.call(lambda x: ops.set_host_enabled(x, ops.host_ref(x, host), enabled))

    def restart_agent(self, host: str) -> None:
        self._xapi.call(lambda x: ops.restart_agent(x, host))

    # -- tasks ----------------------------------------------------------------------------
    def cancel_task(self, task: str) -> None:
        self._xapi.call(lambda x: ops.cancel_task(x, task))

    def destroy_task(self, task: str) -> None:
        self._xapi.call(lambda x: ops.destroy_task(x, task))

    def wait_task(
        self,
        task: str,
        on_progress: Callable[[float], None],
        keep_waiting: Callable[[], bool],
    ) -> TaskEnd | None:
        """Block until the task ends (None: it vanished, e.g. a toolstack restart)."""
        record = self._watcher.wait_task(
            task, lambda r: on_progress(float(r["progress"])), keep_waiting
        )
        if record is None:
            return None
        error = [str(part) for part in record.get("error_info") or []]
        if record["status"] not in ("pending", "success") and not error:
            error = ["INTERNAL_ERROR", str(record["status"])]
        return TaskEnd(record["status"], error)
