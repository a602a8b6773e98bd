"""A plan, the pool it was made against and its checklist: what a request shows and
stores. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.models import Check, Intent, Plan, PoolFacts
from bot.planning.plan import copy_bytes
from bot.planning.preflight import blocking
from bot.planning.resolve import disk_label
from bot.planning.units import format_duration, format_size


@dataclass(frozen=True)
class Preview:
    """A plan, the pool it was made against, and its checklist."""

    plan: Plan
    pool: PoolFacts
    checks: tuple[Check, ...]

    @property
    def blocked(self) -> bool:
        return blocking(self.checks)

    @property
    def source_name(self) -> str:
        host = self.pool.hosts.get(self.plan.source_host_ref)
        return host.name if host else "no host (halted)"

    @property
    def dest_name(self) -> str:
        return self.pool.hosts[self.plan.dest_host_ref].name

    def sr_name(self, ref: str) -> str:
        sr = self.pool.srs.get(ref)
        return sr.shown if sr else ref

    def sr_uuid(self, ref: str) -> str:
        sr = self.pool.srs.get(ref)
        return sr.uuid if sr else ""

    def intent(self) -> Intent:
        """What a request stores of this plan (see `Intent`)."""
        plan = self.plan
        return Intent(
            vm_uuid=plan.vm.uuid,
            dest_host_uuid=self.pool.hosts[plan.dest_host_ref].uuid,
            source_host_uuid=getattr(self.pool.hosts.get(plan.source_host_ref), "uuid", ""),
            disk_srs={m.disk.userdevice: self.sr_uuid(m.dest_sr_ref) for m in plan.disks},
            source_srs={m.disk.userdevice: self.sr_uuid(m.disk.sr_ref) for m in plan.disks},
            mode=plan.mode,
            shutdown=plan.shutdown,
            was_running=plan.vm.power_state == "Running",
            copy_bytes=copy_bytes(plan),
        )

    def stored(self) -> dict[str, Any]:
        """The request's `plan` column: the intent, and the summary its messages show."""
        return {"intent": self.intent().as_json(), "summary": self.summary()}

    def drift(self, intent: Intent) -> str | None:
        """How the VM changed since `intent` was stored (power state, host, disks' SRs), in
        words, or None: a plan approved for one situation is never run in another."""
        vm, was_running = self.plan.vm, intent.was_running
        running = vm.power_state == "Running"
        if running != was_running or vm.power_state not in ("Running", "Halted"):
            then = "running" if was_running else "halted"
            return f"{vm.name} was {then} when approved and is {vm.power_state.lower()} now"
        host = self.pool.hosts.get(vm.resident_on)
        if running and host is not None and host.uuid != intent.source_host_uuid:
            return f"{vm.name} runs on {host.name} now, not where it ran when approved"
        then_srs = intent.source_srs
        if then_srs is None:  # stored before the bot kept it
            return None
        now_srs = {d.userdevice: self.sr_uuid(d.sr_ref) for d in vm.disks}
        if set(now_srs) != set(then_srs):
            return f"{vm.name}'s disks changed since it was approved"
        moved = [device for device, sr in now_srs.items() if sr != then_srs[device]]
        if moved:
            return f"{vm.name}'s disk {', '.join(sorted(moved))} moved to another SR since"
        return None

    def summary(self) -> dict[str, Any]:
        """What the request message shows, kept with the request for listings and audit."""
        plan = self.plan
        return {
            "vm": plan.vm.name,
            "source": self.source_name,
            "dest": self.dest_name,
            "mode": plan.mode,
            "call": plan.call,
            "estimate": format_duration(plan.estimate_seconds),
            "downtime": format_duration(plan.downtime_seconds),
            "snapshots": len(plan.vm.snapshots),
            "snapshot_uuids": [snap.uuid for snap in plan.vm.snapshots],
            "disks": [
                {
                    "label": disk_label(m.disk),
                    "size": format_size(m.disk.virtual_size),
                    "from": self.sr_name(m.disk.sr_ref),
                    "to": self.sr_name(m.dest_sr_ref),
                }
                for m in plan.disks
            ],
            "checks": [
                {
                    "key": c.key,
                    "severity": str(c.severity),
                    "title": c.title,
                    "reason": c.reason,
                    "fix": c.fix,
                    "action": str(c.action) if c.action else None,
                }
                for c in self.checks
            ],
        }
