"""The migration state machine at work: submit, approve, run, cancel, stuck, recover.

Every state change is a compare-and-set in the store, so two presses or two workers never
start one migration twice. A run is a list of steps (shutdown, migrate, start, ...); each
step is written to the store *before* its XAPI call and gets its task ref right after, so
a restarted bot re-attaches to the task, or judges a lost one from where the VM now is,
and never issues the same step twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock
from bot.engine import events as ev
from bot.engine.stuck import Remedy, is_stuck, remedy, would_cancel
from bot.logs import about
from bot.models import Fix, HostLoad, Leftover, VMState
from bot.planning.command import MigrateCommand, parse, render
from bot.planning.explain import explain
from bot.planning.planner import Planner, PoolUnreachable, Preview, UserError
from bot.planning.units import format_duration
from bot.states import FINISHED, State
from bot.store.records import Request
from bot.store.store import Store
from bot.xen import ops
from bot.xen.errors import XenError
from bot.xen.watch import TaskWatcher

log = logging.getLogger(__name__)
RUN_ENDS = (State.SUCCEEDED, State.FAILED, State.CANCELLED)  # a leftover can follow any
AGENT_WAIT_SECONDS = 600.0
RETRY_BUSY_SECONDS = 10.0  # XO waits 10 s after TOO_MANY_STORAGE_MIGRATES
PROGRESS_STEP, PROGRESS_SECONDS = 0.05, 30.0  # how often progress is written to the store
RECENT_SECONDS = 86400.0  # how far back the ticker looks for successes to check for stuck
GUEST_AGENT_WAIT_SECONDS = 120.0  # how long a moved guest's agent has to report again
UNREACHABLE_SECONDS = 600.0  # how long a step waits for a silent pool master before failing
OUT_OF_DATE = "This message is out of date: the request changed since it was shown."
REFILABLE = frozenset({"PLAN_CHANGED", "CHECKLIST_BLOCKED"})  # failures before any step


@dataclass(frozen=True)
class EngineConfig:
    max_concurrent: int = 3
    stuck_grace_seconds: float = 120.0
    stall_seconds: float = 600.0
    backup_tag: str = "xo:no-bak"
    approval_ttl_seconds: float = 1800.0
    missed_window_grace_seconds: float = 900.0


class Wedged(Exception):
    """The VM keeps a migrate operation whose task ended: the run cannot go on until a
    toolstack restart clears it."""

    def __init__(self, found: list[Leftover]) -> None:
        super().__init__(found)
        self.found = found


class StepFailed(Exception):
    def __init__(self, step: str, error: list[str]) -> None:
        super().__init__(error)
        self.step = step
        self.error = error


class Engine:
    def __init__(
        self,
        store: Store,
        planner: Planner,
        watcher: TaskWatcher,
        clock: Clock,
        config: EngineConfig,
    ) -> None:
        self.store = store
        self.planner = planner
        self.watcher = watcher
        self.clock = clock
        self.config = config
        self._slots = threading.BoundedSemaphore(config.max_concurrent)
        self._listeners: list[Callable[[ev.Event], None]] = []
        self._current_task: dict[int, str] = {}
        self._stopping = threading.Event()
        self._dispatch: Callable[[int], None] = lambda request_id: None

    def set_dispatcher(self, dispatch: Callable[[int], None]) -> None:
        """Who runs a queued request (the job scheduler; tests may run it inline)."""
        self._dispatch = dispatch

    # -- events ---------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[ev.Event], None]) -> None:
        self._listeners.append(listener)

    def _emit(self, event: ev.Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken renderer must not break a migration
                log.exception("event listener failed on %s", event)

    def _move(
        self, req: Request, to: State, actor: str, action: str, text: str, **changes: Any
    ) -> Request | None:
        new = self.store.transition(
            req.id, to, actor=actor, action=action, details={"text": text}, **changes
        )
        if new is not None:
            self._emit(ev.StateChanged(req.id, str(to), actor, text))
            if to in FINISHED and req.state not in FINISHED | {State.STUCK}:
                self._untag(new)
        return new

    def _untag(self, req: Request) -> None:
        """The backup-exclusion tag is the bot's to remove when the request ends, moved or
        not: the VM goes back to its backups. Failing to is a warning, never a failure."""
        for tag in req.tags_added:
            try:
                self.planner.call(lambda x, tag=tag: ops.remove_tag(x, self._vm_ref(x, req), tag))
                self.store.audit(req.id, "bot", "untagged", {"tag": tag})
            except UserError as error:
                self.store.audit(req.id, "bot", "untag_failed", {"tag": tag, "error": str(error)})
                self._emit(
                    ev.Note(
                        req.id,
                        f"Could not remove the backup-exclusion tag {tag} from {req.vm_name} "
                        f"({error}); remove it by hand so its backups resume.",
                    )
                )

    # -- requests -------------------------------------------------------------------------
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
            plan={"intent": preview.intent(), "summary": preview.summary()},
            run_at=run_at,
            parent_id=parent_id,
        )

    def recheck(self, req: Request) -> Preview:
        """The request's plan against the pool as it is now."""
        return self.planner.rebuild(req.plan["intent"])

    def approve(self, request_id: int, actor: str, revision: int | None = None) -> Request:
        """PENDING -> APPROVED -> QUEUED (or SCHEDULED); raises UserError when refused.

        `revision` is the one the approver saw: a request changed since is not approved.
        """
        req = self._get(request_id)
        if req.state != State.PENDING:
            raise UserError(settled(req))
        if revision is not None and revision != req.revision:
            raise UserError(OUT_OF_DATE)
        preview = self.recheck(req)
        if preview.blocked:
            self.store.update(req.id, bump=True, plan={**req.plan, "summary": preview.summary()})
            self._emit(ev.Revised(req.id, "bot", "the checklist changed: it now has a blocker"))
            raise UserError(f"#{req.id} cannot start: the checklist now has a blocker")
        now = self.clock.now()
        approved = self._move(
            req,
            State.APPROVED,
            actor,
            "approved",
            f"approved by {actor}",
            approved_by=actor,
            approved_at=now,
        )
        if approved is None:
            raise UserError(settled(self._get(req.id)))
        target = State.SCHEDULED if req.run_at and req.run_at > now else State.QUEUED
        queued = self._move(approved, target, actor, str(target), _queued_text(target))
        if queued is not None and target == State.QUEUED:
            self._dispatch(req.id)
        return queued or approved

    def reject(self, request_id: int, actor: str) -> Request:
        req = self._get(request_id)
        text = f"rejected by {actor}"
        new = self._move(req, State.REJECTED, actor, "rejected", text, outcome=text)
        if new is None:
            raise UserError(settled(self._get(req.id)))
        return new

    def cancel(self, request_id: int, actor: str) -> str:
        """Before the run: the request ends. While running: task.cancel, if xapi allows."""
        req = self._get(request_id)
        if req.state in (State.PENDING, State.APPROVED, State.SCHEDULED, State.QUEUED):
            text = f"cancelled by {actor}"
            if self._move(req, State.CANCELLED, actor, "cancelled", text, outcome=text):
                return f"#{req.id} cancelled."
            req = self._get(request_id)
        if req.state == State.RUNNING:
            task = self._current_task.get(req.id) or self._running_task(req.id)
            if not task:
                return f"#{req.id} is between steps; press Cancel again in a moment."
            self.store.audit(req.id, actor, "cancel_requested", {"task": task})
            self.planner.call(lambda x: ops.cancel_task(x, task))
            return f"Asked xapi to cancel #{req.id}'s current step; the thread will say if it did."
        raise UserError(f"#{req.id} is {req.state}; there is nothing to cancel")

    def revise(self, request_id: int, revision: int, fix: str, actor: str) -> Request:
        """Apply a checklist fix (or re-check) to a pending request, then re-run the checklist.

        `fix` is a `Fix` value or "recheck". The press claims the message's revision first,
        so of two presses on one message only one acts.
        """
        req = self._get(request_id)
        if req.state != State.PENDING:
            raise UserError(
                f"#{req.id} is {req.state}; the checklist can change only before approval"
            )
        claimed = self.store.claim(
            req.id, revision, State.PENDING, actor=actor, action=fix, details={"fix": fix}
        )
        if claimed is None:
            raise UserError(OUT_OF_DATE)
        intent, changes = req.plan["intent"], {}
        if fix == Fix.DELETE_SNAPSHOTS:
            text = self._delete_snapshots(req, actor)
        elif fix == Fix.EXCLUDE_FROM_BACKUP:
            tag = f"{self.config.backup_tag}=migrate-bot #{req.id}"
            self.planner.call(lambda x: ops.add_tag(x, self._vm_ref(x, req), tag))
            changes["tags_added"] = [*req.tags_added, tag]
            text = f"{actor} excluded {req.vm_name} from backups (tag {tag})"
        elif fix == Fix.SWITCH_TO_OFFLINE:
            intent = {**intent, "mode": "offline"}
            text = f"{actor} switched #{req.id} to an offline migration"
        elif fix == Fix.HARD_SHUTDOWN:
            intent = {**intent, "shutdown": "hard"}
            text = f"{actor} chose a hard shutdown for #{req.id}"
        else:
            text = f"{actor} re-ran the checklist"
        preview = self.planner.rebuild(intent)
        plan = {**req.plan, "intent": preview.intent(), "summary": preview.summary()}
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
            raise UserError(f"{OUT_OF_DATE} Its snapshots changed since; nothing was deleted.")
        deleted: list[str] = []
        for uuid in named:
            snap = current[uuid]
            try:
                self.planner.call(lambda x, s=snap: ops.destroy_vm(x, s.ref))
            except UserError as error:
                return _deletion_report(actor, req.vm_name, deleted, named, f"{snap.name}: {error}")
            deleted.append(snap.name)
            for vdi in snap.vdi_refs:
                try:
                    self.planner.call(lambda x, v=vdi: ops.destroy_vdi(x, v))
                except UserError as error:
                    left = f"{snap.name} is gone but one of its disks is not ({error})"
                    return _deletion_report(actor, req.vm_name, deleted, named, left)
        return _deletion_report(actor, req.vm_name, deleted, named)

    def retry_offline(self, request_id: int, actor: str) -> Request:
        """A new request, linked to the failed live one, for the same move offline."""
        req = self._get(request_id)
        if req.state == State.FAILED and req.mode == "live":
            found = self._leftovers(req)
            if is_stuck(found):
                self._stick(req, found, str(req.state))  # at once: someone wants the VM
                req = self._get(request_id)
        if req.state == State.STUCK:
            host = req.plan.get("stuck_host_name") or "its host"
            raise UserError(
                f"{req.vm_name} still shows the failed migration (running (vm_migrate)): clear "
                f"it first with Restart toolstack on {host} in #{req.id}'s thread, then retry."
            )
        if req.state != State.FAILED or req.mode != "live":
            raise UserError(
                f"#{req.id} is {req.state}; only a failed live migration is retried offline"
            )
        preview = self.planner.rebuild(req.plan["intent"], mode="offline")
        text = req.command_text + " mode=offline"
        return self._file_again(req, actor, preview, text, "retry_offline")

    def refile(self, request_id: int, actor: str) -> Request:
        """Re-check after a run that never started (the VM changed since its approval, or
        the checklist gained a blocker): the same command, a fresh plan, a new approval."""
        req = self._get(request_id)
        code = (req.error or {}).get("code")
        if req.state != State.FAILED or code not in REFILABLE:
            raise UserError(f"#{req.id} is {req.state}; there is nothing to re-check")
        command = parse(req.command_text)
        if not isinstance(command, MigrateCommand):
            raise UserError(f"#{req.id}'s command no longer parses; file it again by hand")
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
            plan={"intent": preview.intent(), "summary": preview.summary()},
            parent_id=req.id,
            thread_ts=req.thread_ts,
            tags_added=list(req.tags_added),
        )
        for tag in req.tags_added:
            self.planner.call(lambda x, tag=tag: ops.add_tag(x, self._vm_ref(x, req), tag))
        self.store.audit(req.id, actor, action, {"new_request": new.id})
        return new

    def withdraw(self, request_id: int, reason: str) -> None:
        """A request nobody could see (its message was not posted) ends, audited."""
        req = self._get(request_id)
        self._move(req, State.CANCELLED, "bot", "withdrawn", reason, outcome=reason)

    def _running_task(self, request_id: int) -> str | None:
        steps = [s for s in self.store.steps(request_id) if s.state in ("issuing", "running")]
        return steps[-1].task_ref if steps else None

    def _get(self, request_id: int) -> Request:
        req = self.store.get(request_id)
        if req is None:
            raise UserError(f"there is no request #{request_id}")
        return req

    # -- running --------------------------------------------------------------------------
    def run(self, request_id: int) -> Request:
        """Take a concurrency slot, then run (or resume) the request to its end.

        Whatever goes wrong (a step, a lookup, a refusal, a silent master, a bug), the
        request ends in a state, and a VM this run shut down is started again. A failure is
        stored before it is handled, so a bot killed while recovering resumes the recovery,
        never the move.
        """
        with about(request_id), self._slots:
            req = self._get(request_id)
            if req.state == State.QUEUED:
                req = self._move(
                    req, State.RUNNING, "bot", "started", "started", started_at=self.clock.now()
                ) or self._get(request_id)
            if req.state != State.RUNNING:
                return req
            try:
                failure = _stored_failure(req)
                if failure is None:
                    try:
                        self._execute_patiently(req)
                        return self._get(request_id)
                    except Wedged as wedged:  # a leftover blocks the VM: not a failure
                        self._stick(self._get(req.id), wedged.found, str(State.RUNNING))
                        return self._get(request_id)
                    except Exception as error:  # the request must end in a state
                        failure = self._as_failure(req, error)
                    if failure.error[0] == "BOT_STOPPING":
                        return self._get(request_id)  # the next start re-attaches
                    self._remember_failure(req, failure)
                self._after_failure(self._get(req.id), failure)
            except Exception as error:
                log.exception("recovery of #%s failed", req.id)
                self._fail(self._get(req.id), ["INTERNAL_ERROR", str(error)], Recovery())
            finally:
                self._current_task.pop(req.id, None)
            return self._get(request_id)

    def _as_failure(self, req: Request, error: Exception) -> StepFailed:
        if isinstance(error, StepFailed):
            return error
        if isinstance(error, PoolUnreachable):
            return StepFailed("run", ["POOL_UNREACHABLE", str(error)])
        if isinstance(error, UserError):
            return StepFailed("run", ["RUN_REFUSED", str(error)])
        log.exception("run of #%s crashed", req.id)
        return StepFailed("run", ["INTERNAL_ERROR", str(error)])

    def _remember_failure(self, req: Request, failure: StepFailed) -> None:
        plan = {**self._get(req.id).plan, "failure": {"step": failure.step, "error": failure.error}}
        self.store.update(req.id, plan=plan)

    def _execute_patiently(self, req: Request) -> None:
        """A pool master that does not answer is waited for; every pass resumes from the
        steps stored so far, so nothing done is done again."""
        silence = self._silence()
        while True:
            try:
                return self._execute(self._get(req.id))
            except PoolUnreachable:
                if not self._wait_for_master(req, silence, {}):
                    raise

    def _execute(self, req: Request) -> None:
        intent = req.plan["intent"]
        if not self.store.steps(req.id):
            self._check_before_first_step(req)
        goal = _goal(intent)
        was_running, live = intent["was_running"], intent["mode"] == "live"
        started = req.started_at or self.clock.now()  # a resumed run keeps its start

        def migrate(x: Any) -> str:
            # The plan alone, on this session: the checklist ran at the start of the run,
            # and every call here is downtime for an offline move.
            plan = self.planner.rebuild_in(x, req.plan["intent"], checked=False).plan
            return ops.start_migration(x, plan)

        def placed(state: VMState) -> bool:
            on_dest = state.power_state != "Running" or state.host_uuid == goal.dest
            return on_dest and goal.disks_placed(state)

        def running_on_dest(state: VMState) -> bool:
            return state.power_state == "Running" and state.host_uuid == goal.dest

        if live:
            self._step(req, "migrate", migrate, placed)
        else:
            if was_running:
                hard = intent["shutdown"] == "hard"
                self._step(
                    req,
                    "shutdown",
                    lambda x: ops.start_shutdown(x, self._vm_ref(x, req), hard),
                    lambda state: state.power_state == "Halted",
                )
            if self._has_step(req, "migrate") or not goal.disks_placed(self._state(req)):
                self._step(req, "migrate", migrate, placed)
            if was_running:
                self._step(
                    req,
                    "start",
                    lambda x: ops.start_on(x, self._vm_ref(x, req), ops.host_ref(x, goal.dest)),
                    running_on_dest,
                )
            else:
                self.planner.call(
                    lambda x: ops.set_affinity(x, self._vm_ref(x, req), ops.host_ref(x, goal.dest))
                )
        shutdowns = [s.started_at for s in self.store.steps(req.id) if s.name == "shutdown"]
        self._succeed(req, started, min(shutdowns, default=None))

    def _check_before_first_step(self, req: Request) -> None:
        """The plan is re-read before anything is done: a VM that changed since its approval
        (started, stopped, moved) is not moved another way than approved; a checklist
        blocker stops the run too."""
        preview = self.recheck(req)
        drift = preview.drift(req.plan["intent"])
        if drift:
            raise StepFailed("checklist", ["PLAN_CHANGED", drift])
        if preview.blocked:
            reasons = "; ".join(c.reason for c in preview.checks if c.severity == "blocker")
            raise StepFailed("checklist", ["CHECKLIST_BLOCKED", reasons])
        if req.plan["intent"]["was_running"]:
            agent = self.planner.call(lambda x: ops.guest_agent(x, req.vm_uuid))
            before = list(agent.addresses) if agent.live else None  # no agent: nothing to wait for
            self.store.update(req.id, plan={**req.plan, "agent_before": before})

    def _vm_ref(self, x: Any, req: Request) -> str:
        return ops.vm_ref(x, req.vm_uuid)

    def _state(self, req: Request) -> VMState:
        return self.planner.call(lambda x: ops.vm_state(x, self._vm_ref(x, req)))

    def _measure(self, req: Request) -> None:
        """Remember the copy rate, so the next estimates use what this pool really does."""
        copied = req.plan["intent"].get("copy_bytes", 0)
        steps = [s for s in self.store.steps(req.id) if s.name == "migrate" and s.state == "done"]
        if not copied or not steps or steps[-1].ended_at is None:
            return
        seconds = steps[-1].ended_at - steps[-1].started_at
        if seconds >= 1:
            self.store.audit(req.id, "bot", "throughput", {"mbps": copied / 1e6 / seconds})

    def _has_step(self, req: Request, name: str) -> bool:
        return any(s.name == name for s in self.store.steps(req.id))

    def _step(
        self,
        req: Request,
        name: str,
        issue: Callable[[Any], str],
        done: Callable[[VMState], bool],
    ) -> None:
        """Issue one XAPI step exactly once (or re-attach to it) and wait for its end.

        TOO_MANY_STORAGE_MIGRATES is xapi saying "not now": wait and issue a new attempt.
        """
        silence = self._silence()
        while True:
            try:
                return self._attempt(req, name, issue, done)
            except StepFailed as failure:
                if failure.error[0] != "TOO_MANY_STORAGE_MIGRATES":
                    raise
                self.store.audit(req.id, "bot", "retry_later", {"step": name})
                self.clock.sleep(RETRY_BUSY_SECONDS)
            except PoolUnreachable as error:
                # Did the call reach xapi? The next attempt asks the VM, never guesses.
                if not self._wait_for_master(req, silence, {"step": name}):
                    raise StepFailed(name, ["POOL_UNREACHABLE", str(error)]) from None

    def _silence(self) -> _Silence:
        return _Silence(self.clock, lambda: self.planner.xapi.stats.answered)

    def _wait_for_master(self, req: Request, silence: _Silence, details: dict[str, Any]) -> bool:
        """Wait a moment for a pool master that did not answer; False when it has been
        silent for UNREACHABLE_SECONDS (or the bot is stopping): time to give up."""
        if silence.outlasted() or self._stopping.is_set():
            return False
        self.store.audit(req.id, "bot", "pool_unreachable", details)
        self.clock.sleep(RETRY_BUSY_SECONDS)
        return True

    def _attempt(
        self,
        req: Request,
        name: str,
        issue: Callable[[Any], str],
        done: Callable[[VMState], bool],
    ) -> None:
        if self._stopping.is_set():
            raise StepFailed(name, ["BOT_STOPPING"])
        previous = [s for s in self.store.steps(req.id) if s.name == name]
        last = previous[-1] if previous else None
        if last and last.state == "done":
            return
        adopted = None
        if last and last.state == "issuing" and not last.task_ref:
            # The bot died between its call and storing the task: the VM tells which.
            state = self._state(req)
            if done(state):
                self.store.end_step(last.id, "done")
                return
            # Only a task of this step's own kind: another tool's backup on the VM is not ours.
            kinds = STEP_OPERATIONS.get(name, frozenset())
            adopted = next((t for t, op in state.operations.items() if op in kinds), None)
            if adopted:
                self.store.step_task(last.id, adopted)
            else:
                self.store.end_step(last.id, "failed", {"description": ["NOT_ISSUED", name]})
        if last and last.state in ("issuing", "running") and (last.task_ref or adopted):
            step, task = last, last.task_ref or adopted or ""
        else:
            self._wait_until_idle(req)
            attempt = (last.attempt + 1) if last else 1
            step = self.store.begin_step(req.id, name, attempt=attempt)
            if step is None:
                raise StepFailed(name, ["STEP_ALREADY_ISSUED", name])
            self._emit(ev.StepStarted(req.id, name, _STEP_TEXT.get(name, name)))
            task = self.planner.call(issue)
            self.store.step_task(step.id, task)
            runs_on = self.planner.call(lambda x: ops.task_host_name(x, task))
            self.store.audit(req.id, "bot", "task", {"step": name, "task": task, "host": runs_on})
        self._current_task[req.id] = task
        began = self.clock.now()
        record = self._await(req, name, step.id, task, began)
        self._current_task.pop(req.id, None)
        if record is None:  # the task vanished (toolstack restart): judge from the VM
            if self._stopping.is_set():
                raise StepFailed(name, ["BOT_STOPPING"])
            if done(self._state(req)):
                self.store.end_step(step.id, "done")
                self._emit(ev.StepDone(req.id, name, self.clock.now() - began, "done"))
                return
            self.store.end_step(step.id, "failed", {"description": ["TASK_VANISHED", task]})
            raise StepFailed(name, ["TASK_VANISHED", task])
        if record["status"] == "pending":  # we stopped waiting: the bot is stopping
            raise StepFailed(name, ["BOT_STOPPING"])
        self.planner.call(lambda x: ops.destroy_task(x, task))
        if record["status"] == "success":
            self.store.end_step(step.id, "done")
            seconds = self.clock.now() - began
            self._emit(
                ev.StepDone(req.id, name, seconds, f"{name} done in {format_duration(seconds)}")
            )
            return
        error = list(record["error_info"]) or ["INTERNAL_ERROR", record["status"]]
        state = "cancelled" if record["status"] == "cancelled" else "failed"
        self.store.end_step(step.id, state, {"description": error})
        raise StepFailed(name, error)

    def _wait_until_idle(self, req: Request) -> None:
        """Never pile on: an operation another tool runs on the VM is waited for; a migrate
        operation whose task has ended (a leftover) that stays for the grace makes the run
        STUCK until a toolstack restart clears it."""
        since = self.clock.now()
        while (state := self._state(req)).operations:
            found = self._leftovers(req)
            if is_stuck(found) and self.clock.now() - since >= self.config.stuck_grace_seconds:
                raise Wedged(found)
            if self._stopping.is_set():
                raise StepFailed("wait", ["BOT_STOPPING"])
            self.store.audit(
                req.id, "bot", "vm_busy", {"operations": sorted(state.operations.values())}
            )
            self.clock.sleep(RETRY_BUSY_SECONDS)

    def _await(
        self, req: Request, name: str, step_id: int, task: str, began: float
    ) -> dict[str, Any] | None:
        last_change = [self.clock.now(), 0.0]
        stalled = [False]

        written = [-1.0, 0.0]  # fraction and time last written to the store

        def progress(record: dict[str, Any]) -> None:
            fraction, now = float(record["progress"]), self.clock.now()
            if fraction > last_change[1]:
                last_change[:] = [now, fraction]
                stalled[0] = False
            elapsed = now - began
            eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
            # The store needs progress for stalls and restarts, not every tick of it.
            if fraction - written[0] >= PROGRESS_STEP or now - written[1] >= PROGRESS_SECONDS:
                self.store.step_progress(step_id, fraction)
                written[:] = [fraction, now]
            self._emit(ev.StepProgress(req.id, name, fraction, eta))

        def keep_waiting() -> bool:
            idle = self.clock.now() - last_change[0]
            if idle >= self.config.stall_seconds and not stalled[0]:
                stalled[0] = True
                self._emit(ev.StepStalled(req.id, name, idle))
            return not self._stopping.is_set()

        return self.watcher.wait_task(task, progress, keep_waiting)

    def _after_failure(self, req: Request, failure: StepFailed) -> None:
        """A VM this run shut down is started again where it can boot now; then the request
        ends, cancelled if xapi honoured a cancel, failed otherwise."""
        recovery = Recovery()
        if self._shut_down_by_us(req):
            recovery = self._restart_somewhere(req)
            if recovery.stopping:
                return  # the next start resumes the recovery
        if failure.error[0] == "TASK_CANCELLED" and not recovery.down:
            text = f"xapi cancelled the {failure.step} step; {req.vm_name} is where it was."
            if recovery.restarted_on:
                text = f"xapi cancelled the {failure.step} step. {recovery.sentence(req)}"
            self._move(
                self._get(req.id),
                State.CANCELLED,
                "bot",
                "cancelled",
                text,
                outcome=text,
                finished_at=self.clock.now(),
            )
            return
        self._fail(self._get(req.id), failure.error, recovery)

    def _shut_down_by_us(self, req: Request) -> bool:
        intent = req.plan["intent"]
        if intent["mode"] != "offline" or not intent["was_running"]:
            return False
        return self._has_step(req, "shutdown")

    def _restart_somewhere(self, req: Request) -> Recovery:
        """Start the VM on the first host that can boot it where its disks are now: the
        source, else the destination, else any other; the DOWN outcome says why not. A
        silent master is waited for, as a run waits for it."""
        silence = self._silence()
        while True:
            try:
                return self._restart_on_a_host(req)
            except PoolUnreachable as error:
                if not self._wait_for_master(req, silence, {"step": "restart"}):
                    if self._stopping.is_set():
                        return Recovery(stopping=True)
                    return Recovery(down=f"the pool master does not answer ({error})")
            except UserError as error:
                return Recovery(down=f"the pool could not say where it can start ({error})")

    def _restart_on_a_host(self, req: Request) -> Recovery:
        intent = req.plan["intent"]
        if self._state(req).power_state == "Running":
            return Recovery()  # it is up (the start went through before the failure)
        options = self.planner.call(
            lambda x: ops.boot_options(
                x, self._vm_ref(x, req), [intent["source_host_uuid"], intent["dest_host_uuid"]]
            )
        )
        names = self.planner.names(req.vm_uuid)

        def why(error: tuple[str, ...] | list[str]) -> str:
            return explain(list(error), names=names).sentence.rstrip(".")

        refusals = []
        for option in options:
            if option.refusal is not None:
                refusals.append(f"{option.host_name}: {why(option.refusal)}")
                continue
            try:
                self._step(
                    req,
                    "restart",
                    lambda x, o=option: ops.start_on(x, self._vm_ref(x, req), o.host_ref),
                    lambda state, o=option: state.power_state == "Running",
                )
            except StepFailed as failure:
                if failure.error[0] == "BOT_STOPPING":
                    return Recovery(stopping=True)
                refusals.append(f"{option.host_name}: {why(failure.error)}")
                continue
            where = (
                "its original host"
                if option.host_uuid == intent["source_host_uuid"]
                else "not where it ran: " + "; ".join(refusals)
            )
            return Recovery(restarted_on=option.host_name, where=where)
        return Recovery(down="; ".join(refusals) or "no host in the pool can start it")

    def _fail(self, req: Request, error: list[str], recovery: Recovery) -> None:
        how = explain(error, live=req.mode == "live")
        text = how.sentence
        if recovery.restarted_on or recovery.down:
            text += f" {recovery.sentence(req)}"
        self._move(
            req,
            State.FAILED,
            "bot",
            "failed",
            text,
            outcome=text,
            error={"code": how.code, "description": error},
            finished_at=self.clock.now(),
        )
        self._emit(
            ev.Failed(req.id, text, how.next_step, how.code, how.retry_offline, bool(recovery.down))
        )

    def _succeed(self, req: Request, started: float, down_since: float | None) -> None:
        req = self._get(req.id)  # what the run stored on its way (the agent's addresses)
        now = self.clock.now()
        seconds, downtime = now - started, (now - down_since if down_since else 0.0)
        srs = sorted({d["to"] for d in req.plan["summary"]["disks"]})
        where = (
            f"is running on {req.dest_host_name}"
            if req.plan["intent"]["was_running"]
            else f"stays halted; its next start lands on {req.dest_host_name}"
        )
        text = (
            f"{req.vm_name} {where}, disks on {', '.join(srs) or 'their SRs'}, "
            f"{format_duration(seconds)}"
        )
        if downtime:
            text += f" (downtime {format_duration(downtime)})"
        if req.tags_added:
            text += "; backups resume (the bot removes its backup-exclusion tag)"
        watch = req.plan["intent"]["was_running"] and req.plan.get("agent_before") is not None
        plan = {**req.plan, "agent_watch": watch}
        if self._move(
            req, State.SUCCEEDED, "bot", "succeeded", text, outcome=text, finished_at=now, plan=plan
        ):
            self._measure(req)  # once, whatever was retried before
        self._emit(ev.Succeeded(req.id, text, seconds, downtime))

    # -- stuck --------------------------------------------------------------------------
    def check_stuck(self, request_id: int) -> Request:
        """A migrate operation left on the VM (or its hosts) after the run ended means STUCK;
        once it is gone, the request goes back to how it ended, or its run carries on."""
        req = self._get(request_id)
        if req.state not in (State.STUCK, *RUN_ENDS) or not self.store.steps(req.id):
            return req  # a request that never ran left nothing behind
        found = self._leftovers(req)
        if not found:
            if req.state == State.STUCK:
                self._unstick(req)
            return self._get(request_id)
        if req.state == State.STUCK or not is_stuck(found):
            return req
        self._stick(req, found, str(req.state))
        return self._get(request_id)

    def _leftovers(self, req: Request) -> list[Leftover]:
        """The request's leftovers, after destroying its own finished tasks (so that a
        member's restart is enough to clear them)."""
        own = {s.task_ref for s in self.store.steps(req.id) if s.task_ref}
        hosts = [req.plan["intent"].get("source_host_uuid", ""), req.dest_host_uuid]

        def read(x: Any) -> list[Leftover]:
            return ops.leftovers(x, req.vm_uuid, hosts, own)

        found = self.planner.call(read)
        ended = [f.task for f in found if f.task_state == "ended" and f.task in own]
        if ended:
            for task in ended:
                self.planner.call(lambda x, t=task: ops.destroy_task(x, t))
            found = self.planner.call(read)
        return found

    def _stick(self, req: Request, found: list[Leftover], came_from: str) -> None:
        hosts = self.planner.call(ops.host_loads)
        fix = remedy(found, hosts, self._busy_hosts(req))
        holders = " and ".join(sorted({f.holder for f in found}))
        text = (
            f"{req.vm_name} still shows a migration in progress (running (vm_migrate)) on "
            f"{holders} after its run ended."
        )
        plan = {**req.plan, "stuck_from": came_from, "stuck_tried": []}
        new = self._move(req, State.STUCK, "bot", "stuck", text, plan=plan)
        if new:
            self._offer(new, fix, hosts, text)

    def _offer(self, req: Request, fix: Remedy, hosts: list[HostLoad], text: str) -> None:
        """Post the next remedy: the restart that clears it, or the guide's last resort."""
        if fix.host is None:
            plan = {**req.plan, "stuck_host": None, "stuck_host_name": None}
            self.store.update(req.id, bump=True, plan=plan)
            advice = (
                f"{text} {fix.why.capitalize()}: the guide's last step is to reboot the host "
                f"{req.vm_name} runs on (the bot never reboots hosts itself), then check it."
            )
            self._emit(ev.Stuck(req.id, "", "", advice, ()))
            return
        name = fix.host.name
        plan = {**req.plan, "stuck_host": fix.host.uuid, "stuck_host_name": name}
        self.store.update(req.id, bump=True, plan=plan)
        offer = f"{text} Restarting the toolstack on {name} clears it: {fix.why}."
        self._emit(ev.Stuck(req.id, fix.host.ref, name, offer, would_cancel(fix.host, hosts)))

    def _unstick(self, req: Request) -> None:
        back = State(req.plan.get("stuck_from") or State.SUCCEEDED)
        text = "the leftover operation is gone"
        if self._move(req, back, "bot", "cleared", text):
            self._emit(ev.Cleared(req.id, f"{req.vm_name} is no longer stuck."))
            if back == State.RUNNING:
                self._dispatch(req.id)  # the offline run carries on where it stopped

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
            raise UserError(f"#{req.id} is {req.state}; there is no toolstack to restart")
        hosts = self.planner.call(ops.host_loads)
        host = next((h for h in hosts if h.uuid == host_uuid), None)
        if host is None:
            raise UserError("that host is no longer in the pool; press Re-check")
        if self.planner.call(ops.ha_enabled):
            raise UserError(
                "HA is enabled on this pool: a toolstack restart would fence the "
                "host. Disable HA first, or restart the toolstack by hand."
            )
        running = [r for r in self.store.in_states(State.RUNNING) if r.id != req.id]
        if not host.is_master:
            running = [r for r in running if host.uuid in _hosts_of(r)]
        if running:
            where = "in this pool" if host.is_master else f"on {host.name}"
            raise UserError(
                f"#{running[0].id} is running {where}; restarting the toolstack on {host.name} "
                "would abort it. Try again when it has finished."
            )
        cancels = list(would_cancel(host, hosts))
        self.store.audit(
            req.id, actor, "restart_toolstack", {"host": host.name, "cancels": cancels}
        )
        self._emit(
            ev.StepStarted(req.id, "restart_toolstack", f"restarting the toolstack on {host.name}")
        )
        began = self.clock.now()
        before = self.planner.call(lambda x: ops.agent_start_time(x, host.uuid))
        self.planner.call(lambda x: ops.restart_agent(x, host.uuid))
        self._wait_agent(host.uuid, before)
        took = self.clock.now() - began
        self._emit(ev.StepDone(req.id, "restart_toolstack", took, "the toolstack is back"))
        req = self.check_stuck(req.id)
        if req.state != State.STUCK:
            return f"The toolstack on {host.name} restarted and {req.vm_name} is clear."
        tried = [*req.plan.get("stuck_tried", []), host.uuid]
        req = self.store.update(req.id, plan={**req.plan, "stuck_tried": tried})
        hosts = self.planner.call(ops.host_loads)
        fix = remedy(self._leftovers(req), hosts, self._busy_hosts(req), tried)
        text = (
            f"The toolstack on {host.name} restarted but {req.vm_name} still shows the migration."
        )
        self._offer(req, fix, hosts, text)
        return text

    def _wait_agent(self, host_uuid: str, before: float) -> None:
        deadline = self.clock.now() + AGENT_WAIT_SECONDS
        while self.clock.now() < deadline:
            try:
                if self.planner.xapi.call(lambda x: ops.agent_back(x, host_uuid, before)):
                    return
            except XenError:
                pass  # still restarting
            self.clock.sleep(1.0)
        raise UserError("the toolstack did not come back within 10 minutes; check the host")

    # -- after the move: the guide's "confirm the host and the disks" ------------------------
    def check_agent(self, request_id: int) -> None:
        """The guest agent reports again on the destination, with the addresses it had: said
        in the thread; one that stays silent or comes back changed is a warning, never a
        failure (the move itself is verified by placement)."""
        req = self._get(request_id)
        if not req.plan.get("agent_watch"):
            return
        landed = req.finished_at or self.clock.now()
        agent = self.planner.call(lambda x: ops.guest_agent(x, req.vm_uuid))
        before, after = sorted(req.plan.get("agent_before") or []), sorted(agent.addresses)
        back = agent.live and agent.reported_at is not None and agent.reported_at >= landed - 1
        if back:
            took = format_duration(max(0.0, (agent.reported_at or landed) - landed))
            if after == before:
                note = ev.Note(
                    req.id,
                    f"guest agent back after {took}, {', '.join(after)} as before",
                    warning=False,
                )
            else:
                note = ev.Note(
                    req.id,
                    f"{req.vm_name}'s guest agent is back on {req.dest_host_name} after {took}, "
                    f"but its addresses changed: {', '.join(before) or 'none'} -> "
                    f"{', '.join(after) or 'none'}; check its network there.",
                )
        elif self.clock.now() - landed >= GUEST_AGENT_WAIT_SECONDS:
            note = ev.Note(
                req.id,
                f"{req.vm_name}'s guest agent has not reported on {req.dest_host_name} "
                f"{format_duration(GUEST_AGENT_WAIT_SECONDS)} after the move; the move itself "
                "is verified, but check the VM's console.",
            )
        else:
            return
        self.store.update(req.id, plan={**req.plan, "agent_watch": False})
        self._emit(note)

    # -- deadlines ------------------------------------------------------------------------
    def due(self) -> list[tuple[str, int]]:
        """What the ticker must do now, judged from stored times against the clock.

        ("stuck", id) for a run's end whose grace has passed (once) and for every stuck
        request (a hand-made toolstack restart clears it too); ("start", id) for a
        scheduled request whose window has come, ("missed", id) for one whose window
        passed longer ago than the grace (the bot was down); ("expire", id) for a request
        nobody approved in time (one with a window may wait for approval until it opens).
        """
        now, config = self.clock.now(), self.config
        grace = config.stuck_grace_seconds
        recent = now - grace - RECENT_SECONDS  # an end older than this was checked long ago
        work = [
            ("stuck", r.id)
            for r in self.store.in_states(*RUN_ENDS, changed_since=recent)
            if not r.plan.get("stuck_checked") and (r.finished_at or now) + grace <= now
        ]
        work += [("stuck", r.id) for r in self.store.in_states(State.STUCK)]
        work += [
            ("agent", r.id)
            for r in self.store.in_states(State.SUCCEEDED, changed_since=recent)
            if r.plan.get("agent_watch")
        ]
        for r in self.store.in_states(State.SCHEDULED):
            if r.run_at is not None and r.run_at <= now:
                late = now - r.run_at > config.missed_window_grace_seconds
                work.append(("missed" if late else "start", r.id))
        work += [
            ("expire", r.id)
            for r in self.store.in_states(State.PENDING)
            if max(r.created_at + config.approval_ttl_seconds, r.run_at or 0.0) <= now
        ]
        return work

    def expire(self, request_id: int) -> Request | None:
        """Nobody approved it in time: the buttons go, the thread says so."""
        req = self._get(request_id)
        waited = format_duration(self.clock.now() - req.created_at)
        text = f"expired: nobody approved it within {waited}; file it again if still needed"
        return self._move(req, State.EXPIRED, "bot", "expired", text, outcome=text)

    def miss(self, request_id: int) -> Request | None:
        """Its window passed while the bot was down, beyond the grace: it does not run."""
        req = self._get(request_id)
        late = format_duration(self.clock.now() - (req.run_at or self.clock.now()))
        text = (
            f"missed: its window passed {late} ago while the bot was down "
            f"(more than the {format_duration(self.config.missed_window_grace_seconds)} "
            "grace); file it again for a new window"
        )
        return self._move(req, State.MISSED, "bot", "missed", text, outcome=text)

    def mark_checked(self, request_id: int) -> None:
        req = self._get(request_id)
        self.store.update(req.id, plan={**req.plan, "stuck_checked": True})

    def start_window(self, request_id: int) -> Request | None:
        req = self._get(request_id)
        return self._move(req, State.QUEUED, "bot", "window_open", "its window has come: queued")

    # -- life cycle -----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop issuing steps; running tasks are left for the next start to re-attach."""
        self._stopping.set()

    def recoverable(self) -> list[Request]:
        """Requests a fresh start must pick up (queued, running)."""
        return self.store.in_states(State.APPROVED, State.QUEUED, State.RUNNING)


@dataclass(frozen=True)
class Goal:
    """Where the request puts the VM: the destination host's uuid and each disk's SR uuid
    by its place in the VM (userdevice); what "done" means for each step."""

    dest: str
    disks: dict[str, str]

    def disks_placed(self, state: VMState) -> bool:
        return all(state.disk_srs.get(device) == sr for device, sr in self.disks.items())


def _goal(intent: dict[str, Any]) -> Goal:
    return Goal(dest=intent["dest_host_uuid"], disks=dict(intent["disk_srs"]))


@dataclass(frozen=True)
class Recovery:
    """What became of a VM the failed run had shut down."""

    restarted_on: str = ""  # the host it was started again on
    where: str = ""  # "its original host" / "not where it ran: <why not, per host>"
    down: str = ""  # why no host could start it (the VM is DOWN)
    stopping: bool = False  # the bot stopped mid-recovery: the next start resumes it

    def sentence(self, req: Request) -> str:
        if self.down:
            return (
                f"{req.vm_name} is DOWN: it was shut down for the move and could not be "
                f"started again ({self.down}). Start it by hand once that is fixed."
            )
        return f"{req.vm_name} was started again on {self.restarted_on}, {self.where}."


def _stored_failure(req: Request) -> StepFailed | None:
    """The failure a run was recovering from when the bot stopped, if any."""
    stored = req.plan.get("failure")
    return StepFailed(stored["step"], list(stored["error"])) if stored else None


@dataclass
class _Silence:
    """A spell of a pool master not answering: it starts at the first unanswered call, not
    when the run or step began (a long copy before it costs none of the wait), and starts
    again when the master answered any call in between."""

    clock: Clock
    answered: Callable[[], int]  # how many calls the master has answered so far
    since: float = 0.0
    seen: int = -1

    def outlasted(self) -> bool:
        now, answered = self.clock.now(), self.answered()
        if answered != self.seen:
            self.since, self.seen = now, answered
        return now - self.since >= UNREACHABLE_SECONDS


def settled(req: Request) -> str:
    """What a press meant for a pending request meets once it was decided: who did what,
    whichever way a race between two presses went."""
    if req.approved_by:
        return f"Already approved by {req.approved_by}."
    if req.outcome:
        return f"Already {req.outcome}."
    return f"#{req.id} is {req.state}; it no longer waits for a decision."


def _hosts_of(req: Request) -> set[str]:
    """The hosts a request's migration involves (uuids): where the VM was, where it goes."""
    return {req.plan["intent"].get("source_host_uuid", ""), req.dest_host_uuid} - {""}


def _deletion_report(
    actor: str, vm: str, deleted: list[str], named: list[str], failure: str = ""
) -> str:
    """What the thread says after Delete N snapshots, a failure half-way included."""
    if not failure:
        return f"{actor} deleted {len(deleted)} snapshot(s) of {vm} and their disks"
    done = ", ".join(deleted) or "none"
    return (
        f"{actor} asked to delete {len(named)} snapshot(s) of {vm}: deleted {done}; "
        f"stopped at {failure}. The rest were not touched; Re-check shows what is left."
    )


def _queued_text(state: State) -> str:
    return "scheduled for its window" if state == State.SCHEDULED else "queued"


# The operation xapi lists in VM.current_operations while each step's task runs.
STEP_OPERATIONS = {
    "shutdown": frozenset({"clean_shutdown", "hard_shutdown", "shutdown"}),
    "migrate": frozenset({"pool_migrate", "migrate_send"}),
    "start": frozenset({"start_on", "start"}),
    "restart": frozenset({"start_on", "start"}),
}

_STEP_TEXT = {
    "shutdown": "shutting the VM down",
    "migrate": "migrating",
    "start": "starting the VM on the destination",
    "restart": "starting the VM again where it was",
}
