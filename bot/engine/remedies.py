"""Which toolstack restart clears a stuck VM, and what it costs: pure rules.

xapi keeps a VM "running (vm_migrate)" while its `current_operations` holds an entry. A
restart of any host's agent makes the master drop, pool-wide, every entry whose task no
longer exists (`cancel_tasks.ml`, `xapi_pool.ml` hello, `dbsync_master.ml`); only the
master's restart, which loses every task and session of the pool, drops an entry whose
task record still exists. So a member is enough once the leftover's task is gone (the bot
destroys its finished tasks first), and the master only when it is not; after both, the
guide's last resort is a reboot, which the bot never does itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.models import HostLoad, Leftover


@dataclass(frozen=True)
class Remedy:
    """The toolstack to restart (None: nothing less than a reboot is left) and why."""

    host: HostLoad | None
    why: str


def is_stuck(found: Sequence[Leftover]) -> bool:
    """Leftovers whose task has ended or vanished; a running task is not stuck (yet)."""
    return bool(found) and all(f.task_state != "pending" for f in found)


def remedy(
    found: Sequence[Leftover],
    hosts: Sequence[HostLoad],
    busy: Iterable[str] = (),
    tried: Iterable[str] = (),
) -> Remedy:
    """The least disruptive restart that clears `found`, skipping hosts already `tried`
    and members where the bot's own runs are (`busy`, host uuids)."""
    tried, busy = set(tried), set(busy)
    master = next((h for h in hosts if h.is_master), None)
    if not any(f.task_state == "ended" for f in found):
        members = [h for h in hosts if not h.is_master and h.uuid not in tried | busy]
        members.sort(key=lambda h: (len(h.pending), h.name))
        if members:
            return Remedy(
                members[0],
                "the leftover's task is gone, and a member's restart makes the pool master "
                "drop every such operation; nothing else in the pool stops",
            )
    if master is not None and master.uuid not in tried:
        return Remedy(
            master,
            "only the pool master's restart drops an operation whose task record remains; "
            "it cancels every task in the pool and ends every session",
        )
    return Remedy(None, "restarting the toolstack did not clear it")


def would_cancel(host: HostLoad, hosts: Sequence[HostLoad]) -> tuple[str, ...]:
    """What restarting `host`'s toolstack cancels: its tasks, or the pool's on the master."""
    if host.is_master:
        return tuple(name for h in hosts for name in h.pending)
    return host.pending
