"""What the simulator does differently on demand: faults, timing and the call log.

Tests set these in-process (`sim.faults.fail_next_migration(...)`); people and other
processes use the control endpoint (`POST /control`), which calls the same methods.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

EMU_MANAGER_FAILURE = (
    'xenopsd internal error: Domain.Emu_manager_failure("Received error from emu-manager: '
    'xenguest Invalid argument")'
)


@dataclass
class Timing:
    """Durations in simulator seconds; transfer time grows with the bytes to copy."""

    storage_bytes_per_s: float = 200e6
    memory_bytes_per_s: float = 1e9
    clean_shutdown_s: float = 4.0
    hard_shutdown_s: float = 0.5
    start_s: float = 5.0
    lock_wait_s: float = 60.0  # xapi waits up to 2 h on a busy VM before failing
    agent_restart_delay_s: float = 1.0
    agent_down_s: float = 5.0
    guest_agent_s: float = 4.0  # a started or moved guest's agent reports again after this
    session_idle_s: float = 86400.0
    tick_s: float = 0.05
    max_storage_migrations: int = 3


@dataclass
class FailRule:
    vm: str | None  # a VM ref, or None for the next migration of any VM
    at: float  # progress fraction where the task fails
    error: list[str]


@dataclass
class StickRule:
    vm: str | None  # a VM ref, or None for the next migration of any VM
    at: float = 1.0  # with `error`: where the task fails, leaving its operation behind
    error: list[str] | None = None


@dataclass
class Faults:
    fail_rules: list[FailRule] = field(default_factory=list)
    stick_rules: list[StickRule] = field(default_factory=list)
    live_fail_load: float = 0.9  # live migration of a VM above this CPU load fails
    refuse_clean_shutdown: set[str] = field(default_factory=set)
    drop_until: float = 0.0  # simulator time until which connections are dropped
    drop_mode: str = "reset"  # "reset" closes the socket, "hang" never answers
    latency_s: float = 0.0  # real seconds added to every call (benchmarks)
    session_max_calls: int | None = None  # a session expires after this many calls
    start_failures: dict[str, list[list[str]]] = field(default_factory=dict)  # VM -> errors
    silent_agents: set[str] = field(default_factory=set)  # VMs whose agent never reports
    new_addresses: dict[str, str] = field(default_factory=dict)  # VM -> its next address
    down_hosts: set[str] = field(default_factory=set)  # addresses refusing connections
    on_down_hosts: list[Callable[[], None]] = field(default_factory=list)  # server hooks
    deny_task_destroy: bool = False  # task.destroy: RBAC_PERMISSION_DENIED (task.destroy/any)
    unreported_task_deletes: bool = False  # event.from leaves out tasks' `del` events
    # with HA on, host.disable breaks the failover plan: HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN
    ha_plan_breaks: bool = False

    def set_host_down(self, address: str, down: bool = True) -> None:
        """The host at `address` stops listening: connections are refused, as by a dead host
        or one whose xapi is not running (a member still names it as master). With
        `down=False` it listens again. Takes effect before this returns."""
        if down:
            self.down_hosts.add(address)
        else:
            self.down_hosts.discard(address)
        for listener in self.on_down_hosts:
            listener()

    def fail_next_migration(
        self, at: float = 0.5, error: list[str] | None = None, vm: str | None = None
    ) -> None:
        """The next migration (of `vm`, or any) fails when its progress reaches `at`."""
        self.fail_rules.append(FailRule(vm, at, error or ["MIRROR_FAILED", "OpaqueRef:NULL"]))

    def stick_next_migration(
        self, vm: str | None = None, at: float = 1.0, error: list[str] | None = None
    ) -> None:
        """The next migration leaves its operation in current_operations (on the VM, and
        `vm_migrate` on the destination host): it succeeds, or with `error` it fails at
        `at`, as a wedged live migration of a loaded VM does."""
        self.stick_rules.append(StickRule(vm, at, error))

    def fail_starts(self, vm: str, times: int = 1, error: list[str] | None = None) -> None:
        """The VM's next `times` starts fail with `error` (a start xapi itself refuses)."""
        failure = error or ["INTERNAL_ERROR", "xenopsd internal error: injected start failure"]
        self.start_failures.setdefault(vm, []).extend([failure] * times)

    def take_start_failure(self, vm: str) -> list[str] | None:
        queued = self.start_failures.get(vm)
        return queued.pop(0) if queued else None

    def take_fail_rule(self, vm: str) -> FailRule | None:
        for rule in self.fail_rules:
            if rule.vm in (None, vm):
                self.fail_rules.remove(rule)
                return rule
        return None

    def take_stick_rule(self, vm: str) -> StickRule | None:
        for rule in self.stick_rules:
            if rule.vm in (None, vm):
                self.stick_rules.remove(rule)
                return rule
        return None


class CallLog:
    """Every call the simulator served: counts by method, for tests and benchmarks."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.total = 0

    def record(self, method: str) -> None:
        self.counts[method] += 1
        self.total += 1

    def reset(self) -> None:
        self.counts.clear()
        self.total = 0
