"""A request's life before and beside its run: filed, approved or rejected, fixed,
cancelled, filed again (Retry offline, Re-check)."""

from __future__ import annotations

from dataclasses import replace

from bot import messages as say
from bot.engine import events as ev
from bot.engine.batches import Batches
from bot.engine.part import Part, Shared
from bot.engine.remedies import is_stuck
from bot.engine.stuck import StuckVMs
from bot.errors import UserError
from bot.models import Fix
from bot.planning.command import MigrateCommand, parse, render
from bot.planning.preview import Preview
from bot.states import State
from bot.store.records import Request

REFILABLE = frozenset({"PLAN_CHANGED", "CHECKLIST_BLOCKED"})  # failures before any step


class Requests(Part):
    def __init__(self, shared: Shared, stuck: StuckVMs, batches: Batches) -> None:
        super().__init__(shared)
        self.stuck = stuck
        self.batches = batches

    def preview(self, command: MigrateCommand) -> Preview:
        return self.planner.preview(command)

    def submit(
        self,
        command: MigrateCommand,
        preview: Preview,
        requester: str,
        channel: str | None = None,
        run_at: float | None = None,
        parent_id: int | None = None,
    ) -> Request:
        """File a request (PENDING) for a previewed command."""
        plan = preview.plan
        return self.store.create_request(
            requester=requester,
            channel=channel,
            command_text=render(command),
            vm_uuid=plan.vm.uuid,
            vm_name=plan.vm.name,
            dest_host_uuid=preview.pool.hosts[plan.dest_host_ref].uuid,
            dest_host_name=preview.dest_name,
            mode=plan.mode,
            shutdown=plan.shutdown,
            plan=preview.stored(),
            run_at=run_at,
            parent_id=parent_id,
        )

    def recheck(self, req: Request) -> Preview:
        """The request's plan against the pool as it is now."""
        return self.planner.rebuild(req.intent)

    def approve(self, request_id: int, actor: str, revision: int | None = None) -> Request:
        """PENDING -> APPROVED -> QUEUED (or SCHEDULED); raises UserError when refused.

        `revision` is the one the approver saw: a request changed since is not approved.
        """
        req = self._get(request_id)
        if req.state != State.PENDING:
            raise _settled(req)
        if revision is not None and revision != req.revision:
            raise UserError(say.OUT_OF_DATE)
        approved = self.batches.approve(req, actor) if req.is_batch else self._approve(req, actor)
        if approved is None:
            raise _settled(self._get(req.id))
        now = self.clock.now()
        target = State.SCHEDULED if req.run_at and req.run_at > now else State.QUEUED
        queued = self._move(approved, target, actor, str(target), say.queued(target))
        if queued is not None and target == State.QUEUED:
            self._emit(ev.Queued(req.id))
        return queued or approved

    def _approve(self, req: Request, actor: str) -> Request | None:
        preview = self.recheck(req)
        if preview.blocked:
            self.store.update(req.id, bump=True, plan={**req.plan, "summary": preview.summary()})
            self._emit(ev.Revised(req.id, "bot", "the checklist changed: it now has a blocker"))
            raise UserError(say.now_blocked(req.id))
        return self._move(
            req,
            State.APPROVED,
            actor,
            "approved",
            f"approved by {actor}",
            approved_by=actor,
            approved_at=self.clock.now(),
        )

    def reject(self, request_id: int, actor: str) -> Request:
        req = self._get(request_id)
        text = f"rejected by {actor}"
        new = self._move(req, State.REJECTED, actor, "rejected", text, outcome=text)
        if new is None:
            raise _settled(self._get(req.id))
        return new

    def cancel(self, request_id: int, actor: str) -> str:
        """Before the run: the request ends. While running: task.cancel, if xapi allows."""
        req = self._get(request_id)
        if req.is_batch:
            again = bool(req.plan.get("cancelled_by")) and req.state == State.RUNNING
            text = self.batches.cancel(req, actor)
            if again:  # asked twice: the running moves are cancelled too, each as one request
                running = [c for c in self.store.children(req.id) if c.state == State.RUNNING]
                text = " ".join([text, *(self.cancel(c.id, actor) for c in running)])
            return text
        if req.state in (State.PENDING, State.APPROVED, State.SCHEDULED, State.QUEUED):
            text = f"cancelled by {actor}"
            if self._move(req, State.CANCELLED, actor, "cancelled", text, outcome=text):
                return f"#{req.id} cancelled."
            req = self._get(request_id)
        if req.state == State.RUNNING:
            task = self.shared.running_tasks.get(req.id) or self._running_task(req.id)
            if not task:
                return say.between_steps(req.id)
            self.store.audit(req.id, actor, "cancel_requested", {"task": task})
            self.xen.cancel_task(task)
            return say.cancel_asked(req.id)
        raise UserError(say.nothing_to_cancel(req))

    def revise(self, request_id: int, revision: int, fix: str, actor: str) -> Request:
        """Apply a checklist fix (or re-check) to a pending request, then re-run the checklist.

        `fix` is a `Fix` value or "recheck". The press claims the message's revision first,
        so of two presses on one message only one acts.
        """
        req = self._get(request_id)
        if req.state != State.PENDING:
            raise UserError(say.fixes_only_pending(req))
        claimed = self.store.claim(
            req.id, revision, State.PENDING, actor=actor, action=fix, details={"fix": fix}
        )
        if claimed is None:
            raise UserError(say.OUT_OF_DATE)
        if req.is_batch:
            self.batches.revise(req, fix, actor)
            return self._get(req.id)
        intent, changes = req.intent, {}
        if fix == Fix.DELETE_SNAPSHOTS:
            text = self._delete_snapshots(req, actor)
        elif fix == Fix.EXCLUDE_FROM_BACKUP:
            tag = f"{self.config.backup_tag}=migrate-bot #{req.id}"
            self.xen.add_tag(req.vm_uuid, tag)
            changes["tags_added"] = [*req.tags_added, tag]
            text = say.excluded(actor, req.vm_name, tag)
        else:
            if fix == Fix.SWITCH_TO_OFFLINE:
                intent = replace(intent, mode="offline")
            elif fix == Fix.HARD_SHUTDOWN:
                intent = replace(intent, shutdown="hard")
            text = say.fixed(actor, req.id, fix)
        preview = self.planner.rebuild(intent)
        plan = {**req.plan, **preview.stored()}
        new = self.store.update(
            req.id, plan=plan, mode=preview.plan.mode, shutdown=preview.plan.shutdown, **changes
        )
        self._emit(ev.Revised(req.id, actor, text))
        return new

    def _delete_snapshots(self, req: Request, actor: str) -> str:
        """Exactly the snapshots the message named, each with the disks that are its own.

        A snapshot taken (or removed) since the message was drawn makes the press out of
        date: the message is redrawn with the snapshots as they are and nothing is deleted.
        """
        preview = self.recheck(req)
        current = {snap.uuid: snap for snap in preview.plan.vm.snapshots}
        named = req.plan["summary"].get("snapshot_uuids")
        if named is None or set(named) != set(current):
            plan = {**req.plan, "summary": preview.summary()}
            self.store.update(req.id, bump=True, plan=plan)
            self._emit(ev.Revised(req.id, "bot", "the VM's snapshots changed since; re-checked"))
            raise UserError(say.snapshots_out_of_date())
        snapshots = [current[uuid] for uuid in named]
        deleted, failure = self._destroy_snapshots(snapshots)
        return say.deletion_report(actor, req.vm_name, deleted, named, failure)

    def retry_offline(self, request_id: int, actor: str) -> Request:
        """A new request, linked to the failed live one, for the same move offline."""
        req = self._get(request_id)
        if req.is_batch:
            raise UserError(say.one_vm_at_a_time(req.id))
        if req.state == State.FAILED and req.mode == "live":
            found = self.stuck.leftovers(req)
            if is_stuck(found):
                self.stuck.stick(req, found, str(req.state))  # at once: someone wants the VM
                req = self._get(request_id)
        if req.state == State.STUCK:
            raise UserError(say.clear_first(req))
        if req.state != State.FAILED or req.mode != "live":
            raise UserError(say.only_failed_live(req))
        preview = self.planner.rebuild(req.intent, mode="offline")
        text = req.command_text + " mode=offline"
        return self._file_again(req, actor, preview, text, "retry_offline")

    def refile(self, request_id: int, actor: str) -> Request:
        """Re-check after a run that never started (the VM changed since its approval, or
        the checklist gained a blocker): the same command, a fresh plan, a new approval."""
        req = self._get(request_id)
        if req.is_batch:
            raise UserError(say.one_vm_at_a_time(req.id))
        code = (req.error or {}).get("code")
        if req.state != State.FAILED or code not in REFILABLE:
            raise UserError(say.nothing_to_recheck(req))
        command = parse(req.command_text)
        if not isinstance(command, MigrateCommand):
            raise UserError(say.unparsable(req.id))
        preview = self.planner.preview(command)
        return self._file_again(req, actor, preview, req.command_text, "refile")

    def _file_again(
        self, req: Request, actor: str, preview: Preview, text: str, action: str
    ) -> Request:
        """A request linked to `req`, in its thread; it inherits the backup-exclusion tag,
        which `req`'s end removed, so the bot puts it back on the VM."""
        new = self.store.create_request(
            requester=actor,
            channel=req.channel,
            command_text=text,
            vm_uuid=req.vm_uuid,
            vm_name=req.vm_name,
            dest_host_uuid=preview.pool.hosts[preview.plan.dest_host_ref].uuid,
            dest_host_name=preview.dest_name,
            mode=preview.plan.mode,
            shutdown=preview.plan.shutdown,
            plan=preview.stored(),
            parent_id=req.id,
            thread_ts=req.thread_ts,
            tags_added=list(req.tags_added),
        )
        for tag in req.tags_added:
            self.xen.add_tag(req.vm_uuid, tag)
        self.store.audit(req.id, actor, action, {"new_request": new.id})
        return new

    def withdraw(self, request_id: int, reason: str) -> None:
        """A request nobody could see (its message was not posted) ends, audited."""
        req = self._get(request_id)
        self._move(req, State.CANCELLED, "bot", "withdrawn", reason, outcome=reason)

    def _running_task(self, request_id: int) -> str | None:
        steps = [s for s in self.store.steps(request_id) if s.state in ("issuing", "running")]
        return steps[-1].task_ref if steps else None


def _settled(req: Request) -> UserError:
    """The refusal of a press that lost to someone's decision, naming whose."""
    return UserError(say.settled(req), req.people)
