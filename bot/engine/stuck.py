"""Stuck VMs: a migrate operation left after any end of a run, found after the grace, and
the toolstack restart that clears it with the least harm (the rules: `remedies.py`)."""

from __future__ import annotations

from bot import messages as say
from bot.engine import events as ev
from bot.engine.part import Part
from bot.engine.remedies import Remedy, is_stuck, remedy, would_cancel
from bot.errors import UserError, XenError
from bot.models import HostLoad, Leftover
from bot.states import State
from bot.store.records import Request

AGENT_WAIT_SECONDS = 600.0
RUN_ENDS = (State.SUCCEEDED, State.FAILED, State.CANCELLED)  # a leftover can follow any


class StuckVMs(Part):
    def check_stuck(self, request_id: int) -> Request:
        """A migrate operation left on the VM (or its hosts) after the run ended means STUCK;
        once it is gone, the request goes back to how it ended, or its run carries on."""
        req = self._get(request_id)
        if req.state not in (State.STUCK, *RUN_ENDS) or not self.store.steps(req.id):
            return req  # a request that never ran left nothing behind
        found = self.leftovers(req)
        if not found:
            if req.state == State.STUCK:
                self._unstick(req)
            return self._get(request_id)
        if req.state == State.STUCK or not is_stuck(found):
            return req
        self.stick(req, found, str(req.state))
        return self._get(request_id)

    def leftovers(self, req: Request) -> list[Leftover]:
        """The request's leftovers, after destroying its own finished tasks (so that a
        member's restart is enough to clear them)."""
        own = {s.task_ref for s in self.store.steps(req.id) if s.task_ref}
        hosts = [req.intent.source_host_uuid, req.dest_host_uuid]
        found = self.xen.leftovers(req.vm_uuid, hosts, own)
        ended = [f.task for f in found if f.task_state == "ended" and f.task in own]
        if ended:
            for task in ended:
                self.xen.destroy_task(task)
            found = self.xen.leftovers(req.vm_uuid, hosts, own)
        return found

    def stick(self, req: Request, found: list[Leftover], came_from: str) -> None:
        hosts = self.xen.host_loads()
        fix = remedy(found, hosts, self._busy_hosts(req))
        holders = " and ".join(sorted({f.holder for f in found}))
        text = say.stuck(req.vm_name, holders)
        plan = {**req.plan, "stuck_from": came_from, "stuck_tried": []}
        new = self._move(req, State.STUCK, "bot", "stuck", text, plan=plan)
        if new:
            self._offer(new, fix, hosts, text)

    def _offer(self, req: Request, fix: Remedy, hosts: list[HostLoad], text: str) -> None:
        """Post the next remedy: the restart that clears it, or the guide's last resort."""
        if fix.host is None:
            plan = {**req.plan, "stuck_host": None, "stuck_host_name": None}
            self.store.update(req.id, bump=True, plan=plan)
            advice = say.reboot_advice(text, fix.why, req.vm_name)
            self._emit(ev.Stuck(req.id, "", "", advice, ()))
            return
        name = fix.host.name
        plan = {**req.plan, "stuck_host": fix.host.uuid, "stuck_host_name": name}
        self.store.update(req.id, bump=True, plan=plan)
        offer = say.restart_offer(text, name, fix.why)
        self._emit(ev.Stuck(req.id, fix.host.ref, name, offer, would_cancel(fix.host, hosts)))

    def _unstick(self, req: Request) -> None:
        back = State(req.plan.get("stuck_from") or State.SUCCEEDED)
        text = "the leftover operation is gone"
        if self._move(req, back, "bot", "cleared", text):
            self._emit(ev.Cleared(req.id, f"{req.vm_name} is no longer stuck."))
            if back == State.RUNNING:
                self._emit(ev.Queued(req.id))  # the offline run carries on where it stopped

    def _busy_hosts(self, req: Request) -> set[str]:
        """Hosts the bot's other running migrations use (their toolstack stays up)."""
        others = [r for r in self.store.in_states(State.RUNNING) if r.id != req.id]
        return {uuid for other in others for uuid in _hosts_of(other)}

    def restart_toolstack(self, request_id: int, actor: str) -> str:
        """host.restart_agent on the host the stuck notice names, then check again; if the
        leftover stays, offer the next remedy (the master, then a reboot)."""
        req = self._get(request_id)
        host_uuid = req.plan.get("stuck_host") if req.state == State.STUCK else None
        if not host_uuid:
            raise UserError(say.no_toolstack(req))
        hosts = self.xen.host_loads()
        host = next((h for h in hosts if h.uuid == host_uuid), None)
        if host is None:
            raise UserError(say.host_gone())
        if self.xen.ha_enabled():
            raise UserError(say.ha_on())
        running = [r for r in self.store.in_states(State.RUNNING) if r.id != req.id]
        if not host.is_master:
            running = [r for r in running if host.uuid in _hosts_of(r)]
        if running:
            where = "in this pool" if host.is_master else f"on {host.name}"
            raise UserError(say.run_in_the_way(running[0].id, where, host.name))
        cancels = list(would_cancel(host, hosts))
        self.store.audit(
            req.id, actor, "restart_toolstack", {"host": host.name, "cancels": cancels}
        )
        self._emit(
            ev.StepStarted(req.id, "restart_toolstack", f"restarting the toolstack on {host.name}")
        )
        began = self.clock.now()
        before = self.xen.agent_start_time(host.uuid)
        self.xen.restart_agent(host.uuid)
        self._wait_agent(host.uuid, before)
        took = self.clock.now() - began
        self._emit(ev.StepDone(req.id, "restart_toolstack", took, "the toolstack is back"))
        req = self.check_stuck(req.id)
        if req.state != State.STUCK:
            return say.toolstack_cleared(host.name, req.vm_name)
        tried = [*req.plan.get("stuck_tried", []), host.uuid]
        req = self.store.update(req.id, plan={**req.plan, "stuck_tried": tried})
        hosts = self.xen.host_loads()
        fix = remedy(self.leftovers(req), hosts, self._busy_hosts(req), tried)
        text = say.toolstack_not_enough(host.name, req.vm_name)
        self._offer(req, fix, hosts, text)
        return text

    def _wait_agent(self, host_uuid: str, before: float) -> None:
        deadline = self.clock.now() + AGENT_WAIT_SECONDS
        while self.clock.now() < deadline:
            try:
                if self.xen.agent_back(host_uuid, before):
                    return
            except XenError:
                pass  # still restarting
            self.clock.sleep(1.0)
        raise UserError(say.agent_not_back())


def _hosts_of(req: Request) -> set[str]:
    """The hosts a request's migration involves (uuids): where the VM was, where it goes."""
    return {req.intent.source_host_uuid, req.dest_host_uuid} - {""}
