"""A run: its steps issued once each, re-attached after a crash, judged from the VM when a
task vanishes; any failure after an offline shutdown starts the VM again somewhere.

Each step is written to the store *before* its XAPI call and gets its task ref right
after, so a restarted bot re-attaches to the task, or judges a lost one from where the VM
now is, and never issues the same step twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bot import messages as say
from bot.clock import Clock
from bot.engine import events as ev
from bot.engine.batches import Batches
from bot.engine.part import Part, Shared
from bot.engine.remedies import is_stuck
from bot.engine.stuck import StuckVMs
from bot.errors import BotError, PoolUnreachable, UserError, XapiFailure
from bot.logs import about
from bot.models import Intent, Leftover, Plan, VMState
from bot.planning.explain import explain
from bot.planning.units import format_duration
from bot.states import State
from bot.store.records import Request
from bot.xen.gateway import TaskEnd

log = logging.getLogger(__name__)
RETRY_BUSY_SECONDS = 10.0  # XO waits 10 s after TOO_MANY_STORAGE_MIGRATES
PROGRESS_STEP, PROGRESS_SECONDS = 0.05, 30.0  # how often progress is written to the store
UNREACHABLE_SECONDS = 600.0  # how long a step waits for a silent pool master before failing
StepName = Literal["shutdown", "migrate", "start", "restart", "wait", "checklist", "run"]


class RunInterrupted(BotError):
    """How a run's step ends early; handled inside the run, never shown as such."""


class Wedged(RunInterrupted):
    """The VM keeps a migrate operation whose task ended: the run cannot go on until a
    toolstack restart clears it."""

    def __init__(self, found: list[Leftover]) -> None:
        super().__init__(found)
        self.found = found


class StepFailed(RunInterrupted):
    """A step failed: xapi's ErrorDescription, or the bot's own words in that shape."""

    def __init__(self, step: StepName, error: list[str]) -> None:
        super().__init__(error)
        self.step = step
        self.error = error


class Runner(Part):
    def __init__(self, shared: Shared, stuck: StuckVMs, batches: Batches) -> None:
        super().__init__(shared)
        self.stuck = stuck
        self.batches = batches
        self._slots = threading.BoundedSemaphore(shared.config.max_concurrent)

    def run(self, request_id: int) -> Request:
        """Take a concurrency slot, then run (or resume) the request to its end.

        Whatever goes wrong (a step, a lookup, a refusal, a silent master, a bug), the
        request ends in a state, and a VM this run shut down is started again. A failure is
        stored before it is handled, so a bot killed while recovering resumes the recovery,
        never the move. A batch's own run takes no slot: its children do.
        """
        batch = self._get(request_id)
        if batch.is_batch:
            with about(request_id):
                return self.batches.run(batch)
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
                        self.stuck.stick(self._get(req.id), wedged.found, str(State.RUNNING))
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
                self.shared.running_tasks.pop(req.id, None)
            return self._get(request_id)

    def _as_failure(self, req: Request, error: Exception) -> StepFailed:
        if isinstance(error, StepFailed):
            return error
        if isinstance(error, PoolUnreachable):
            return StepFailed("run", ["POOL_UNREACHABLE", str(error)])
        if isinstance(error, XapiFailure):  # a call xapi refused outright
            return StepFailed("run", error.description)
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
        intent = req.intent
        was_running, live = intent.was_running, intent.mode == "live"
        checked = self._check_before_first_step(req) if not self.store.steps(req.id) else None
        idle = checked is not None  # the checklist has just found no operation on the VM
        goal = _goal(intent)
        started = req.started_at or self.clock.now()  # a resumed run keeps its start

        def migrate() -> str:
            # A live move issues the plan its checklist just passed (nothing ran between);
            # otherwise the plan alone, read again: every call here is downtime offline.
            plan = checked if live and checked else self.planner.plan_only(req.intent)
            return self.xen.migrate(plan)

        def placed(state: VMState) -> bool:
            on_dest = state.power_state != "Running" or state.host_uuid == goal.dest
            return on_dest and goal.disks_placed(state)

        def running_on_dest(state: VMState) -> bool:
            return state.power_state == "Running" and state.host_uuid == goal.dest

        if live:
            self._step(req, "migrate", migrate, placed, idle=idle)
        else:
            if was_running:
                hard = intent.shutdown == "hard"
                self._step(
                    req,
                    "shutdown",
                    lambda: self.xen.shutdown(req.vm_uuid, hard),
                    lambda state: state.power_state == "Halted",
                    idle=idle,
                )
            if self._has_step(req, "migrate") or not goal.disks_placed(self._state(req)):
                self._step(req, "migrate", migrate, placed)
            if was_running:
                self._step(
                    req,
                    "start",
                    lambda: self.xen.start_on(req.vm_uuid, goal.dest),
                    running_on_dest,
                )
            else:
                self.xen.set_affinity(req.vm_uuid, goal.dest)
        shutdowns = [s.started_at for s in self.store.steps(req.id) if s.name == "shutdown"]
        self._succeed(req, started, min(shutdowns, default=None))

    def _check_before_first_step(self, req: Request) -> Plan:
        """The plan is re-read before anything is done: a VM that changed since its approval
        (started, stopped, moved) is not moved another way than approved; a checklist
        blocker stops the run too. The plan that passed."""
        preview = self.planner.rebuild(req.intent, recent=True)
        drift = preview.drift(req.intent)
        if drift:
            raise StepFailed("checklist", ["PLAN_CHANGED", drift])
        if preview.blocked:
            reasons = "; ".join(c.reason for c in preview.checks if c.severity == "blocker")
            raise StepFailed("checklist", ["CHECKLIST_BLOCKED", reasons])
        if req.intent.was_running:  # the addresses the agent must report again after it
            seen = preview.plan.vm.agent_addresses  # None: no live agent, nothing to wait for
            before = list(seen) if seen is not None else None
            self.store.update(req.id, plan={**req.plan, "agent_before": before})
        return preview.plan

    def _state(self, req: Request) -> VMState:
        return self.xen.vm_state(req.vm_uuid)

    def _measure(self, req: Request) -> None:
        """Remember the copy rate, so the next estimates use what this pool really does."""
        copied = req.intent.copy_bytes
        steps = [s for s in self.store.steps(req.id) if s.name == "migrate" and s.state == "done"]
        if not copied or not steps or steps[-1].ended_at is None:
            return
        seconds = steps[-1].ended_at - steps[-1].started_at
        if seconds >= 1:
            self.store.audit(req.id, "bot", "throughput", {"mbps": copied / 1e6 / seconds})

    def _step(
        self,
        req: Request,
        name: str,
        issue: Callable[[], str],
        done: Callable[[VMState], bool],
        *,
        idle: bool = False,
    ) -> None:
        """Issue one XAPI step exactly once (or re-attach to it) and wait for its end.

        TOO_MANY_STORAGE_MIGRATES is xapi saying "not now": wait and issue a new attempt.
        `idle`: the run's checklist has just found no operation on the VM (its busy check
        blocks otherwise), so the first attempt does not ask the VM again.
        """
        silence = self._silence()
        while True:
            try:
                return self._attempt(req, name, issue, done, idle)
            except StepFailed as failure:
                if failure.error[0] != "TOO_MANY_STORAGE_MIGRATES":
                    raise
                self.store.audit(req.id, "bot", "retry_later", {"step": name})
                self.clock.sleep(RETRY_BUSY_SECONDS)
            except PoolUnreachable as error:
                # Did the call reach xapi? The next attempt asks the VM, never guesses.
                if not self._wait_for_master(req, silence, {"step": name}):
                    raise StepFailed(name, ["POOL_UNREACHABLE", str(error)]) from None
            idle = False

    def _silence(self) -> _Silence:
        return _Silence(self.clock, lambda: self.xen.answered)

    def _wait_for_master(self, req: Request, silence: _Silence, details: dict[str, Any]) -> bool:
        """Wait a moment for a pool master that did not answer; False when it has been
        silent for UNREACHABLE_SECONDS (or the bot is stopping): time to give up."""
        if silence.outlasted() or self.shared.stopping.is_set():
            return False
        self.store.audit(req.id, "bot", "pool_unreachable", details)
        self.clock.sleep(RETRY_BUSY_SECONDS)
        return True

    def _attempt(
        self,
        req: Request,
        name: str,
        issue: Callable[[], str],
        done: Callable[[VMState], bool],
        idle: bool,
    ) -> None:
        if self.shared.stopping.is_set():
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
            if not idle:
                self._wait_until_idle(req)
            if not self.shared.fence():  # another replica may run the pool now: stop here
                self.shared.stopping.set()
                raise StepFailed(name, ["BOT_STOPPING"])
            attempt = (last.attempt + 1) if last else 1
            step = self.store.begin_step(req.id, name, attempt=attempt)
            if step is None:
                raise StepFailed(name, ["STEP_ALREADY_ISSUED", name])
            self._emit(ev.StepStarted(req.id, name, _STEP_TEXT.get(name, name)))
            task = issue()
            self.store.step_task(step.id, task)
            runs_on = self.xen.task_host_name(task)
            self.store.audit(req.id, "bot", "task", {"step": name, "task": task, "host": runs_on})
        self.shared.running_tasks[req.id] = task
        began = self.clock.now()
        end = self._await(req, name, step.id, task, began)
        self.shared.running_tasks.pop(req.id, None)
        if end is None:  # the task vanished (toolstack restart): judge from the VM
            if self.shared.stopping.is_set():
                raise StepFailed(name, ["BOT_STOPPING"])
            if done(self._state(req)):
                self.store.end_step(step.id, "done")
                self._emit(ev.StepDone(req.id, name, self.clock.now() - began, "done"))
                return
            self.store.end_step(step.id, "failed", {"description": ["TASK_VANISHED", task]})
            raise StepFailed(name, ["TASK_VANISHED", task])
        if end.status == "pending":  # we stopped waiting: the bot is stopping
            raise StepFailed(name, ["BOT_STOPPING"])
        self.xen.destroy_task(task)
        if end.status == "success":
            self.store.end_step(step.id, "done")
            seconds = self.clock.now() - began
            self._emit(
                ev.StepDone(req.id, name, seconds, f"{name} done in {format_duration(seconds)}")
            )
            return
        state = "cancelled" if end.status == "cancelled" else "failed"
        self.store.end_step(step.id, state, {"description": end.error})
        raise StepFailed(name, end.error)

    def _wait_until_idle(self, req: Request) -> None:
        """Never pile on: an operation another tool runs on the VM is waited for; a migrate
        operation whose task has ended (a leftover) that stays for the grace makes the run
        STUCK until a toolstack restart clears it."""
        since, told = self.clock.now(), False
        while (state := self._state(req)).operations:
            found = self.stuck.leftovers(req)
            if is_stuck(found) and self.clock.now() - since >= self.config.stuck_grace_seconds:
                raise Wedged(found)
            if self.shared.stopping.is_set():
                raise StepFailed("wait", ["BOT_STOPPING"])
            if not told:  # said once, however long it lasts
                told = True
                busy = sorted(state.operations.values())
                self.store.audit(req.id, "bot", "vm_busy", {"operations": busy})
            self.clock.sleep(RETRY_BUSY_SECONDS)

    def _await(
        self, req: Request, name: str, step_id: int, task: str, began: float
    ) -> TaskEnd | None:
        last_change = [self.clock.now(), 0.0]
        stalled = [False]

        written = [-1.0, 0.0]  # fraction and time last written to the store

        def progress(fraction: float) -> None:
            now = self.clock.now()
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
            return not self.shared.stopping.is_set()

        return self.xen.wait_task(task, progress, keep_waiting)

    def _after_failure(self, req: Request, failure: StepFailed) -> None:
        """A VM this run shut down is started again where it can boot now; then the request
        ends, cancelled if xapi honoured a cancel, failed otherwise."""
        recovery = Recovery()
        if self._shut_down_by_us(req):
            recovery = self._restart_somewhere(req)
            if recovery.stopping:
                return  # the next start resumes the recovery
        if failure.error[0] == "TASK_CANCELLED" and not recovery.down:
            again = recovery.sentence(req) if recovery.restarted_on else ""
            text = say.cancelled_by_xapi(failure.step, req.vm_name, again)
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
        intent = req.intent
        if intent.mode != "offline" or not intent.was_running:
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
                    if self.shared.stopping.is_set():
                        return Recovery(stopping=True)
                    return Recovery(down=f"the pool master does not answer ({error})")
            except BotError as error:
                return Recovery(down=f"the pool could not say where it can start ({error})")

    def _restart_on_a_host(self, req: Request) -> Recovery:
        intent = req.intent
        if self._state(req).power_state == "Running":
            return Recovery()  # it is up (the start went through before the failure)
        preferred = [intent.source_host_uuid, intent.dest_host_uuid]
        options = self.xen.boot_options(req.vm_uuid, preferred)
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
                    lambda o=option: self.xen.start_on(req.vm_uuid, o.host_uuid),
                    lambda state, o=option: state.power_state == "Running",
                )
            except StepFailed as failure:
                if failure.error[0] == "BOT_STOPPING":
                    return Recovery(stopping=True)
                refusals.append(f"{option.host_name}: {why(failure.error)}")
                continue
            where = (
                "its original host"
                if option.host_uuid == intent.source_host_uuid
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
        text = say.succeeded(req, seconds, downtime)
        watch = req.intent.was_running and req.plan.get("agent_before") is not None
        plan = {**req.plan, "agent_watch": watch}
        if self._move(
            req, State.SUCCEEDED, "bot", "succeeded", text, outcome=text, finished_at=now, plan=plan
        ):
            self._measure(req)  # once, whatever was retried before
        self._emit(ev.Succeeded(req.id, text, seconds, downtime))


@dataclass(frozen=True)
class Goal:
    """Where the request puts the VM: the destination host's uuid and each disk's SR uuid
    by its place in the VM (userdevice); what "done" means for each step."""

    dest: str
    disks: dict[str, str]

    def disks_placed(self, state: VMState) -> bool:
        return all(state.disk_srs.get(device) == sr for device, sr in self.disks.items())


def _goal(intent: Intent) -> Goal:
    return Goal(dest=intent.dest_host_uuid, disks=dict(intent.disk_srs))


@dataclass(frozen=True)
class Recovery:
    """What became of a VM the failed run had shut down."""

    restarted_on: str = ""  # the host it was started again on
    where: str = ""  # "its original host" / "not where it ran: <why not, per host>"
    down: str = ""  # why no host could start it (the VM is DOWN)
    stopping: bool = False  # the bot stopped mid-recovery: the next start resumes it

    def sentence(self, req: Request) -> str:
        if self.down:
            return say.down(req.vm_name, self.down)
        return say.restarted(req.vm_name, self.restarted_on, self.where)


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
