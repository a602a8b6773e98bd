"""Batches: many moves under one approval (a list, a tag, or everything off a host).

A batch is a request of its own (`kind` "batch"); its approval re-checks every move and
creates a child request per VM, held (APPROVED) so each VM is taken from then on. The
batch's run takes no concurrency slot: it disables the host an evacuation empties, then
queues the children, in the plan's order, for the slots. Each child runs exactly as a
single request does (steps, recovery, stuck); the batch ends when none waits or runs any
more, with one outcome ("14 of 15 moved; web03 failed: …").
"""

from __future__ import annotations

import uuid
from typing import Any

from bot import messages as say
from bot.engine import events as ev
from bot.engine.part import Part, Shared
from bot.errors import BotError, UserError
from bot.models import Fix
from bot.planning.batch import BatchPreview
from bot.planning.batch_planner import BatchPlanner
from bot.planning.command import BatchCommand, parse, render
from bot.planning.preview import Preview
from bot.states import ACTIVE, FINISHED, State
from bot.store.records import Request

WAITING = frozenset({State.APPROVED, State.SCHEDULED, State.QUEUED, State.RUNNING})
KEEP_DISABLED_SECONDS = 30.0  # how often, as moves end, an emptied host is checked


class Batches(Part):
    def __init__(self, shared: Shared, planner: BatchPlanner) -> None:
        super().__init__(shared)
        self.batch_planner = planner
        self._checked: dict[int, float] = {}  # batch -> when its host was last checked
        shared.listeners.append(self._on_event)

    def preview(self, command: BatchCommand) -> BatchPreview:
        return self.batch_planner.preview(command)

    def submit(
        self,
        command: BatchCommand,
        preview: BatchPreview,
        requester: str,
        channel: str | None = None,
        run_at: float | None = None,
    ) -> Request:
        """File a batch (PENDING). An evacuation holds its host as a VM request holds its
        VM, so one host is never emptied by two approved batches at once."""
        emptied = preview.pool.hosts.get(preview.evacuate)
        holder = f"evacuate:{emptied.uuid}" if emptied else f"batch:{uuid.uuid4()}"
        return self.store.create_request(
            requester=requester,
            channel=channel,
            command_text=render(command),
            vm_uuid=holder,
            vm_name=preview.subject,
            dest_host_uuid="",
            dest_host_name=", ".join(preview.summary()["targets"]),
            mode=command.mode or "live",
            shutdown=command.shutdown,
            plan=preview.stored(),
            run_at=run_at,
            kind="batch",
        )

    def recheck(self, req: Request) -> BatchPreview:
        return self.batch_planner.recheck(req.command_text, req.plan)

    def approve(self, req: Request, actor: str) -> Request | None:
        """Re-check every move, then approve the batch and create its children, held, in
        one transaction (None: someone decided first). A blocker refuses the approval."""
        preview = self.recheck(req)
        if preview.blocked:
            self.store.update(req.id, bump=True, plan={**req.plan, "summary": preview.summary()})
            self._emit(ev.Revised(req.id, "bot", "the checklist changed: it now has a blocker"))
            raise UserError(say.now_blocked(req.id))
        tags = req.plan["batch"].get("tags", {})
        children = [
            _child(row["command"], item, tags.get(item.plan.vm.uuid, []))
            for row, item in zip(preview.moves(), preview.items, strict=True)
        ]
        batch = {**req.plan["batch"], "tags": {}}  # the children remove them now
        text = f"approved by {actor}"
        approved = self.store.approve_batch(
            req.id,
            children,
            actor=actor,
            details={"text": text, "moves": len(children)},
            approved_by=actor,
            approved_at=self.clock.now(),
            plan={**req.plan, "batch": batch, "summary": preview.summary()},
        )
        if approved is not None:
            self._emit(ev.StateChanged(req.id, str(State.APPROVED), actor, text))
        return approved

    def revise(self, req: Request, fix: str, actor: str) -> None:
        """A fix of the batch's checklist, on every VM its line named; "recheck" plans the
        batch again from its command, against the pool as it is now."""
        batch = dict(req.plan["batch"])
        named = _named(req.plan["summary"]["groups"], fix)
        rows = [row for row in batch["rows"] if row["vm"] in named]
        if fix == "recheck":
            command = parse(req.command_text)
            if not isinstance(command, BatchCommand):
                raise UserError(say.unparsable(req.id))
            preview = self.batch_planner.preview(command)
            text = say.fixed(actor, req.id, fix)
        else:
            if fix == Fix.DELETE_SNAPSHOTS:
                text = self._delete_snapshots(req, rows, actor)
            elif fix == Fix.EXCLUDE_FROM_BACKUP:
                tag = f"{self.config.backup_tag}=migrate-bot #{req.id}"
                tags = {vm: list(found) for vm, found in batch.get("tags", {}).items()}
                for row in rows:
                    self.xen.add_tag(row["intent"]["vm_uuid"], tag)
                    tags.setdefault(row["intent"]["vm_uuid"], []).append(tag)
                batch["tags"] = tags
                text = say.excluded_many(actor, [row["vm"] for row in rows], tag)
            else:
                key, value = (
                    ("mode", "offline") if fix == Fix.SWITCH_TO_OFFLINE else ("shutdown", "hard")
                )
                batch["rows"] = [
                    {**row, "intent": {**row["intent"], key: value}} if row["vm"] in named else row
                    for row in batch["rows"]
                ]
                text = say.fixed(actor, req.id, fix)
            preview = self.batch_planner.recheck(req.command_text, {**req.plan, "batch": batch})
        stored = preview.stored()
        stored["batch"]["tags"] = batch.get("tags", {})
        self.store.update(req.id, plan={**req.plan, **stored})
        self._emit(ev.Revised(req.id, actor, text))

    def _delete_snapshots(self, req: Request, rows: list[dict[str, Any]], actor: str) -> str:
        """Exactly the snapshots the message counted, VM by VM; a VM whose snapshots changed
        since makes the press out of date, and nothing is deleted."""
        preview = self.recheck(req)
        current = {item.plan.vm.uuid: item.plan.vm.snapshots for item in preview.items}
        for row in rows:
            now = {snap.uuid for snap in current.get(row["intent"]["vm_uuid"], ())}
            if now != set(row.get("snapshots", ())):
                self.store.update(req.id, bump=True, plan={**req.plan, **preview.stored()})
                self._emit(ev.Revised(req.id, "bot", "snapshots changed since; re-checked"))
                raise UserError(say.snapshots_out_of_date())
        reports = []
        for row in rows:
            snapshots = current[row["intent"]["vm_uuid"]]
            deleted, failure = self._destroy_snapshots(snapshots)
            named = [snap.name for snap in snapshots]
            reports.append(say.deletion_report(actor, row["vm"], deleted, named, failure))
            if failure:
                break
        return "; ".join(reports)

    def run(self, req: Request) -> Request:
        """Disable the host an evacuation empties, then queue the children for the slots;
        resumed after a restart, it queues what is still held and settles what has ended."""
        if req.state == State.QUEUED:
            refusal = self._disable(req)
            if refusal is not None:
                text = say.host_not_disabled(_host_name(req), refusal)
                self._move(req, State.FAILED, "bot", "failed", text, outcome=text)
                return self._get(req.id)
            count = len(req.plan["batch"]["rows"])
            text = say.batch_started(count, self.config.max_concurrent)
            started = self._move(
                req, State.RUNNING, "bot", "started", text, started_at=self.clock.now()
            )
            req = started or self._get(req.id)
        if req.state == State.RUNNING:
            for child in self.store.children(req.id):
                if child.state == State.APPROVED:
                    queued = self._move(child, State.QUEUED, "bot", "queued", "queued")
                    if queued is not None:
                        self._emit(ev.Queued(child.id))
            self.settle(req.id)
        return self._get(req.id)

    def settle(self, batch_id: int) -> None:
        """End a running batch once none of its moves waits or runs: one outcome, and an
        evacuated host left disabled (disabled again if a toolstack restart enabled it)."""
        batch = self._get(batch_id)
        if batch.state != State.RUNNING:
            return
        host = _host_name(batch) if batch.plan["batch"].get("evacuate") else None
        children = self.store.children(batch_id)
        if any(child.state in WAITING for child in children):
            # As moves end (at most every KEEP_DISABLED_SECONDS): an agent restart by hand
            # may have enabled the host.
            last = self._checked.get(batch_id, float("-inf"))
            if host is not None and self.clock.now() - last >= KEEP_DISABLED_SECONDS:
                self._checked[batch_id] = self.clock.now()
                self._keep_disabled(batch)
            return
        if host is not None:
            self._keep_disabled(batch)
        moved = [c for c in children if c.state == State.SUCCEEDED]
        failed = [
            f"{c.vm_name} failed: {_first(c.outcome)}" for c in children if c.state == State.FAILED
        ]
        stuck = [c.vm_name for c in children if c.state == State.STUCK]
        cancelled = [c for c in children if c.state == State.CANCELLED]
        stopped = [c.vm_name for c in cancelled if c.started_at]
        unrun = len(cancelled) - len(stopped)
        stayed = len(batch.plan.get("summary", {}).get("left", []))
        text = say.batch_outcome(
            len(moved), len(children), failed, stuck, stopped, unrun, host, stayed
        )
        cancelled_by = batch.plan.get("cancelled_by")
        state = (
            State.CANCELLED
            if cancelled_by
            else State.SUCCEEDED
            if len(moved) == len(children)
            else State.FAILED
        )
        now = self.clock.now()
        self._move(
            batch, state, cancelled_by or "bot", str(state), text, outcome=text, finished_at=now
        )

    def cancel(self, req: Request, actor: str) -> str:
        """Before its run, the batch ends (its held children with it). While it runs, the
        moves not started are cancelled and the running ones finish (each can be cancelled
        as one request)."""
        if req.state != State.RUNNING:
            text = f"cancelled by {actor}"
            if self._move(req, State.CANCELLED, actor, "cancelled", text, outcome=text):
                return f"#{req.id} cancelled."
            raise UserError(say.nothing_to_cancel(self._get(req.id)))
        self.store.update(req.id, plan={**req.plan, "cancelled_by": actor})
        self.store.audit(req.id, actor, "cancel_requested", {})
        stopped, running = 0, []
        for child in self.store.children(req.id):
            if child.state in (State.APPROVED, State.SCHEDULED, State.QUEUED):
                text = say.with_batch(req.id, actor)
                if self._move(child, State.CANCELLED, actor, "cancelled", text, outcome=text):
                    stopped += 1
            elif child.state == State.RUNNING:
                running.append(child.id)
        self.settle(req.id)
        return say.batch_cancelled(req.id, stopped, running)

    def enable(self, host_text: str, actor: str) -> str:
        """`/migrate enable host1` and the batch's Re-enable button: host.enable, unless an
        evacuation of that host is still under way."""
        host = self.batch_planner.host(host_text)
        holder = f"evacuate:{host.uuid}"
        active = self.store.by_vm(holder)
        if active is not None and active.state in ACTIVE:
            raise UserError(say.still_evacuating(active.id, host.name))
        if host.enabled:
            return say.already_enabled(host.name)
        self.xen.set_host_enabled(host.uuid, True)
        text = say.host_enabled(host.name, actor)
        last = self.store.latest_for(holder)
        self.store.audit(last.id if last else None, actor, "host_enabled", {"host": host.name})
        if last is not None:
            self._emit(ev.Note(last.id, text, warning=False))
        return text

    def reenable(self, batch_id: int, actor: str) -> str:
        """The Re-enable button of an evacuation's thread."""
        host = self._get(batch_id).plan.get("batch", {}).get("evacuate")
        if not host:
            raise UserError(f"#{batch_id} emptied no host")
        return self.enable(host, actor)

    def _disable(self, req: Request) -> str | None:
        """host.disable for an evacuation (idempotent, so a resumed run asks again); why
        not, in words, when xapi refuses."""
        host = req.plan["batch"].get("evacuate")
        if not host:
            return None
        try:
            self.xen.set_host_enabled(host, False)
        except BotError as error:
            self.store.audit(req.id, "bot", "host_disable_failed", {"error": str(error)})
            return say.reason(error)
        self.store.audit(req.id, "bot", "host_disabled", {"host": host})
        self._emit(ev.Note(req.id, say.host_disabled(_host_name(req)), warning=False))
        return None

    def _keep_disabled(self, batch: Request) -> None:
        """A toolstack restart on the host re-enables it (xapi forgets host.disable): the
        host an evacuation emptied is disabled again, and the thread says so."""
        host = batch.plan["batch"]["evacuate"]
        try:
            if self.xen.host_enabled(host):
                self.xen.set_host_enabled(host, False)
                self.store.audit(batch.id, "bot", "host_disabled", {"host": host, "again": True})
                self._emit(ev.Note(batch.id, say.host_disabled_again(_host_name(batch))))
        except BotError as error:
            self.store.audit(batch.id, "bot", "host_disable_failed", {"error": str(error)})

    def _on_event(self, event: ev.Event) -> None:
        """A child's end may end its batch; a batch's end ends its held children; after a
        toolstack restart the bot made, every host being emptied is disabled again."""
        if isinstance(event, ev.StepDone) and event.step == "restart_toolstack":
            for batch in self.store.in_states(State.RUNNING):
                if batch.is_batch and batch.plan["batch"].get("evacuate"):
                    self._keep_disabled(batch)
            return
        if not isinstance(event, ev.StateChanged):
            return
        state = State(event.state)
        if state not in FINISHED and state != State.STUCK:
            return
        req = self._get(event.request_id)
        if req.batch_id is not None:
            self.settle(req.batch_id)
        elif req.is_batch and state in FINISHED:
            for child in self.store.children(req.id):
                if child.state in (State.APPROVED, State.SCHEDULED, State.QUEUED):
                    text = say.batch_ended_without_it(req.id, str(state))
                    self._move(child, State.CANCELLED, "bot", "cancelled", text, outcome=text)


def _named(groups: list[dict[str, Any]], fix: str) -> set[str]:
    """The VMs the checklist lines with this fix name ("recheck": none)."""
    return {vm for group in groups if group.get("action") == fix for vm in group["vms"]}


def _child(command: str, item: Preview, tags: list[str]) -> dict[str, object]:
    """A child request's fields: one VM's move, as a single request stores it."""
    plan = item.plan
    return {
        "command_text": command,
        "vm_uuid": plan.vm.uuid,
        "vm_name": plan.vm.name,
        "dest_host_uuid": item.pool.hosts[plan.dest_host_ref].uuid,
        "dest_host_name": item.dest_name,
        "mode": plan.mode,
        "shutdown": plan.shutdown,
        "plan": item.stored(),
        "tags_added": list(tags),
    }


def _host_name(batch: Request) -> str:
    return str(batch.plan.get("summary", {}).get("evacuate") or "the host")


def _first(outcome: str | None) -> str:
    """The first sentence of an outcome, for a line of the batch's."""
    text = (outcome or "no reason given").split(". ")[0]
    return text.rstrip(".")
