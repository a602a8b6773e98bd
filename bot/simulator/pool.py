"""The simulated pool: database, clock, sessions, tasks as processes, and call dispatch.

An operation is a generator (a *process*): it yields `Wait`s on the simulator clock and
returns its result, so one body serves `Async.*` (a task the client watches) and the
sync form (the same task, awaited by the HTTP thread). Everything runs under the
database lock; `tick()` advances waiting processes to the clock's `now()`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock, ManualClock, SystemClock
from bot.simulator.db import Database
from bot.simulator.faults import CallLog, Faults, Timing
from bot.simulator.wire import NULL_REF, XapiError, encode_value, wire_time

Process = Generator["Wait", None, Any]


@dataclass
class Wait:
    """Resume when the clock reaches `until`, or as soon as `when()` is true."""

    until: float | None = None
    when: Callable[[], bool] | None = None

    def ready(self, now: float) -> bool:
        return (self.until is not None and now >= self.until) or (
            self.when is not None and self.when()
        )


@dataclass
class _Running:
    task: str
    body: Process
    wait: Wait


@dataclass(frozen=True)
class Call:
    """Who is calling (session ref) and, for an operation, the task it reports on."""

    session: str
    task: str = ""


@dataclass
class Method:
    func: Callable[..., Any]
    min_args: int
    max_args: int
    is_process: bool
    needs_session: bool
    # (xapi release, parameters before it): a parameter that release added, as
    # `host.disable`'s `auto_enable` (xapi 25.31.0); an older xapi counts it as one too many.
    added: tuple[tuple[int, ...], int] | None = None

    def max_args_on(self, release: tuple[int, ...]) -> int:
        if self.added is not None and release < self.added[0]:
            return self.added[1]
        return self.max_args


REGISTRY: dict[str, Method] = {}
NO_SESSION = {"session.login_with_password", "session.slave_local_login_with_password"}


def xapi(
    name: str, added: tuple[tuple[int, ...], int] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a method body `f(sim, call, *params)` under its xapi wire name; `added`
    names the xapi release that brought its last optional parameters and how many
    parameters it took before."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        params = list(inspect.signature(func).parameters.values())[2:]
        required = sum(1 for p in params if p.default is inspect.Parameter.empty)
        REGISTRY[name] = Method(
            func,
            required,
            len(params),
            inspect.isgeneratorfunction(func),
            name not in NO_SESSION,
            added,
        )
        return func

    return register


class Simulator:
    """One XAPI pool in memory. Thread-safe; serve it with `bot.simulator.server`."""

    def __init__(
        self,
        clock: Clock | None = None,
        timing: Timing | None = None,
        username: str = "root",
        password: str = "secret",
    ) -> None:
        from bot.simulator import lifecycle, migration, services  # noqa: F401  (registers)

        self.clock: Clock = clock or SystemClock()
        self.timing = timing or Timing()
        self.faults = Faults()
        self.calls = CallLog()
        self.db = Database()
        self.credentials = (username, password)
        self.load: dict[str, float] = {}  # VM ref -> CPU usage 0..1 (query_data_source)
        self.agent_down_until: dict[str, float] = {}  # host ref -> simulator time
        self.guest_agent_due: dict[str, float] = {}  # VM ref -> when its agent reports
        # host ref -> its local database (xapi's Localdb: /var/lib/xcp/local.db), the keys
        # that outlive a toolstack restart, e.g. `host_auto_enable`
        self.localdb: dict[str, dict[str, str]] = {}
        self.pool_ref = NULL_REF
        self._running: list[_Running] = []
        self._cancel_requested: set[str] = set()
        self._destroy_on_completion: set[str] = set()
        self._session_calls: dict[str, int] = {}
        self._session_seen: dict[str, float] = {}
        self._stop = threading.Event()
        if isinstance(self.clock, ManualClock):
            self.clock.on_advance(self.tick)
            self._ticker = None
        else:
            self._ticker = threading.Thread(target=self._tick_forever, daemon=True)
            self._ticker.start()

    # -- time ---------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def _tick_forever(self) -> None:
        while not self._stop.wait(self.timing.tick_s):
            self.tick()

    def close(self) -> None:
        """Stop the ticker and end every process (their clean-up runs now, not at exit)."""
        self._stop.set()
        with self.db.lock:
            self.kill_tasks(lambda task: False)
            for run in list(self._running):
                self._running.remove(run)
                run.body.close()

    def tick(self) -> None:
        """Resume every process whose wait is over, until none is ready."""
        with self.db.lock:
            progressed = True
            while progressed:
                progressed = False
                for run in list(self._running):
                    if run.task in self._cancel_requested and self._cancellable(run.task):
                        self._cancel_requested.discard(run.task)
                        self._resume(run, XapiError("TASK_CANCELLED", run.task))
                        progressed = True
                    elif run.wait.ready(self.now()):
                        self._resume(run, None)
                        progressed = True
            self._apply_agent_restarts()
            self._report_guest_agents()

    def _report_guest_agents(self) -> None:
        """A guest's agent reports (live, its addresses) a while after the VM started or
        moved; the faults keep one silent or give it a new address."""
        for vm, due in list(self.guest_agent_due.items()):
            if self.now() < due or vm in self.faults.silent_agents:
                continue
            del self.guest_agent_due[vm]
            metrics = self.db.get("VM", vm)["guest_metrics"] if self.db.exists("VM", vm) else ""
            if not self.db.exists("VM_guest_metrics", metrics):
                continue
            networks = dict(self.db.get("VM_guest_metrics", metrics)["networks"])
            if vm in self.faults.new_addresses:
                networks["0/ip"] = self.faults.new_addresses.pop(vm)
            self.db.update(
                "VM_guest_metrics",
                metrics,
                live=True,
                networks=networks,
                last_updated=wire_time(self.now()),
            )

    def _apply_agent_restarts(self) -> None:
        from bot.simulator.services import finish_agent_restart

        for host, until in list(self.agent_down_until.items()):
            if self.now() >= until:
                del self.agent_down_until[host]
                finish_agent_restart(self, host)

    # -- tasks --------------------------------------------------------------------------
    @property
    def master(self) -> str:
        return self.db.get("pool", self.pool_ref)["master"]

    def xapi_version(self) -> tuple[int, ...]:
        """The master's xapi release (`software_version['xapi']`, e.g. `25.6.0`)."""
        text = str(self.db.get("host", self.master)["software_version"].get("xapi", "0"))
        parts = []
        for part in text.split("."):
            digits = "".join(c for c in part if c.isdigit())
            parts.append(int(digits) if digits else 0)
        return tuple(parts)

    def create_task(self, label: str, session: str, host: str | None = None) -> str:
        return self.db.create(
            "task",
            name_label=label,
            created=wire_time(self.now()),
            resident_on=host or self.master,
            allowed_operations=["cancel"],
        )

    def runs_on(self, name: str, args: list[Any]) -> str:
        """The host a VM operation is forwarded to (`message_forwarding.ml`): the one the VM
        runs on (`start_on`: the target); anything else runs on the master."""
        if name == "VM.start_on" and len(args) > 1 and self.db.exists("host", args[1]):
            return args[1]
        if name.startswith("VM.") and args and self.db.exists("VM", args[0]):
            vm = self.db.get("VM", args[0])
            if vm["power_state"] == "Running" and self.db.exists("host", vm["resident_on"]):
                return vm["resident_on"]
        return self.master

    def spawn(self, task: str, body: Process) -> None:
        run = _Running(task, body, Wait(until=self.now()))
        self._running.append(run)
        self._resume(run, None)

    def _resume(self, run: _Running, error: XapiError | None) -> None:
        try:
            wait = run.body.throw(error) if error else run.body.send(None)
        except StopIteration as done:
            self._finish(run, "success", encode_value(done.value if done.value else ""), [])
        except XapiError as failed:
            status = "cancelled" if failed.code == "TASK_CANCELLED" else "failure"
            self._finish(run, status, "", failed.description)
        else:
            run.wait = wait

    def _finish(self, run: _Running, status: str, result: str, error_info: list[str]) -> None:
        self._running.remove(run)
        if not self.db.exists("task", run.task):
            return
        self.db.update(
            "task",
            run.task,
            status=status,
            progress=1.0,
            result=result,
            error_info=error_info,
            finished=wire_time(self.now()),
            allowed_operations=[],
        )
        if run.task in self._destroy_on_completion:
            self.db.delete("task", run.task)

    def _cancellable(self, task: str) -> bool:
        return (
            self.db.exists("task", task)
            and "cancel" in self.db.get("task", task)["allowed_operations"]
        )

    def request_cancel(self, task: str) -> None:
        self.db.get("task", task)
        if self._cancellable(task):
            self._cancel_requested.add(task)

    def destroy_task(self, task: str) -> None:
        record = self.db.get("task", task)
        if record["status"] == "pending":
            self._destroy_on_completion.add(task)
        else:
            self.db.delete("task", task)

    def kill_tasks(self, where: Callable[[str], bool]) -> None:
        """Tasks vanish (agent restart): their processes stop without running to the end."""
        for run in list(self._running):
            if where(run.task):
                self._running.remove(run)
                run.body.close()
        for task in [t for t in self.db.tables["task"] if where(t)]:
            self.db.delete("task", task)

    # -- sessions -----------------------------------------------------------------------
    def open_session(self, originator: str) -> str:
        ref = self.db.create(
            "session",
            this_host=self.master,
            originator=originator,
            last_active=wire_time(self.now()),
            validation_time=wire_time(self.now()),
            pool=False,
        )
        self._session_seen[ref] = self.now()
        return ref

    def check_session(self, session: object) -> str:
        """SESSION_INVALID for an unknown, idle-expired or call-limited session."""
        if not isinstance(session, str) or session not in self.db.tables["session"]:
            raise XapiError("SESSION_INVALID", session)
        idle = self.now() - self._session_seen[session] > self.timing.session_idle_s
        limit = self.faults.session_max_calls
        calls = self._session_calls.get(session, 0)
        if idle or (limit is not None and calls >= limit):
            self.db.delete("session", session)
            raise XapiError("SESSION_INVALID", session)
        self._session_seen[session] = self.now()
        self._session_calls[session] = calls + 1
        return session

    def expire_sessions(self) -> None:
        """Every session ends now (the clients' next call gets SESSION_INVALID)."""
        with self.db.lock:
            for ref in list(self.db.tables["session"]):
                self.db.delete("session", ref)

    # -- dispatch -----------------------------------------------------------------------
    def call(self, method: str, params: list[Any], address: str | None = None) -> Any:
        """Run one XML-RPC method; returns the Value or raises XapiError."""
        from bot.simulator.generic import resolve

        self.calls.record(method)
        with self.db.lock:
            is_async = method.startswith("Async.")
            name = method.removeprefix("Async.")
            entry = REGISTRY.get(name) or resolve(self, name)
            if entry is None:
                raise XapiError("MESSAGE_METHOD_UNKNOWN", method)
            given = len(params) - (1 if entry.needs_session else 0)
            most = entry.max_args_on(self.xapi_version()) if entry.added else entry.max_args
            if given < entry.min_args or given > most:
                raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, most, max(given, 0))
            self._check_master(address, name)
            session = self.check_session(params[0]) if entry.needs_session else ""
            args = params[1:] if entry.needs_session else params
            if is_async and not entry.is_process:
                raise XapiError("Fault", f"No async mode for this operation (rpc: {method})")
            if not entry.is_process:
                return entry.func(self, Call(session), *args)
            task = self.create_task(method, session, self.runs_on(name, args))
            self.spawn(task, entry.func(self, Call(session, task), *args))
            if is_async:
                return task
            return self._await(task)

    def _await(self, task: str) -> Any:
        import xmlrpc.client

        while self.db.get("task", task)["status"] == "pending":
            self.db.changed.wait(self.timing.tick_s)
            self.tick()
        record = self.db.get("task", task)
        self.db.delete("task", task)
        if record["status"] != "success":
            raise XapiError(*record["error_info"])
        if not record["result"]:
            return ""
        (value,), _ = xmlrpc.client.loads(
            f"<params><param>{record['result']}</param></params>".join(
                ('<?xml version="1.0"?><methodResponse>', "</methodResponse>")
            )
        )
        return value

    def _check_master(self, address: str | None, name: str) -> None:
        if address is None:
            return
        master = self.db.get("host", self.master)
        if address != master["address"]:
            raise XapiError("HOST_IS_SLAVE", master["address"])
        if self.master in self.agent_down_until:
            raise ConnectionAbortedError("the toolstack is restarting")
