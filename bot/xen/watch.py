"""One `event.from` loop per pool, so tracking many tasks costs a few calls per second.

The watcher keeps the latest record of every task in the pool; engine threads wait on it
instead of polling each task. It has its own session (the XenAPI client is not
thread-safe). After a reconnect it starts again from a full dump, and a task we knew that
is not in the dump has *vanished* (a toolstack restart on the master loses every task).
A task can also vanish with no `del` event (the client logs in again by itself and asks
the new xapi from its old token): when xapi counts fewer tasks than we know, the tasks
someone waits for are read again, as Xen Orchestra's watcher does.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import xmlrpc.client
from collections import Counter
from collections.abc import Callable
from typing import Any

import XenAPI

from bot.errors import XenError
from bot.xen import ops
from bot.xen.connection import NETWORK_ERRORS, Xapi

log = logging.getLogger(__name__)
CLASSES = ["pool", "task"]


class TaskWatcher:
    def __init__(
        self,
        xapi: Xapi,
        poll_seconds: float = 10.0,
        retry_seconds: float = 2.0,
        batch_pause: float = 0.5,
    ):
        """`batch_pause`: after a batch of changes, wait before asking again. xapi merges
        the changes of one object meanwhile, so nothing is lost and the calls per second
        stay near 1/batch_pause however many tasks run (not one call per change)."""
        self._xapi = xapi
        self._poll = poll_seconds
        self._retry = retry_seconds
        self._pause = batch_pause
        self._cond = threading.Condition()
        self._tasks: dict[str, dict[str, Any]] = {}
        self._vanished: set[str] = set()
        self._waiting: Counter[str] = Counter()  # task ref -> threads in wait_task
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xapi-events", daemon=True)
        self._session: Any = None
        self.connected = False
        self.calls = 0

    def start(self) -> TaskWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop: wake the pending event.from with an injected pool event."""
        self._stop.set()
        if self._thread.ident is None:  # never started: a replica that never led the pool
            return
        with contextlib.suppress(XenError):  # unreachable: the loop's own timeout ends it
            self._xapi.call(lambda x: x.event.inject("pool", x.pool.get_all()[0]))
        self._thread.join(self._poll + 5)
        if self._session is not None:
            self._xapi.end_session(self._session)

    def task(self, ref: str) -> dict[str, Any] | None:
        with self._cond:
            return self._tasks.get(ref)

    def wait_task(
        self,
        ref: str,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        keep_waiting: Callable[[], bool] = lambda: True,
        tick: float = 0.25,
    ) -> dict[str, Any] | None:
        """Block until the task settles (its final record) or vanishes (None).

        `on_change` sees each new record while pending; `keep_waiting` is asked every
        `tick` seconds, so a caller can give up (stall, shutdown) without a lost wake-up.
        """
        with self._cond:
            self._waiting[ref] += 1
        try:
            return self._wait(ref, on_change, keep_waiting, tick)
        finally:
            with self._cond:
                self._waiting -= Counter({ref: 1})

    def _wait(
        self,
        ref: str,
        on_change: Callable[[dict[str, Any]], None] | None,
        keep_waiting: Callable[[], bool],
        tick: float,
    ) -> dict[str, Any] | None:
        seen: dict[str, Any] | None = None
        known = self._known(ref)
        while True:
            with self._cond:
                if ref in self._vanished:
                    return None
                record = self._tasks.get(ref)
                if record is not None and record["status"] != "pending":
                    return record
                if record is None or record is seen:
                    self._cond.wait(tick)
                    record = self._tasks.get(ref)
            if record is not None and record is not seen and record["status"] == "pending":
                seen = record
                if on_change:
                    on_change(record)
            if not keep_waiting():
                return self.task(ref) if self.task(ref) else seen
            if known is None:
                known = self._known(ref)

    def _known(self, ref: str) -> bool | None:
        """Does xapi know the task (a bot that restarted has never seen it in an event)?

        One call per wait: False when xapi says the handle is invalid (the task ended and
        was destroyed, or a toolstack restart lost it), None when XAPI does not answer.
        """
        if self.task(ref) is not None:
            return True
        try:
            record = self._xapi.call(lambda x: ops.task_record(x, ref))
        except XenError:
            return None
        with self._cond:
            if record is None:
                self._vanished.add(ref)
            else:
                self._tasks.setdefault(ref, record)
        return record is not None

    def _run(self) -> None:
        token = ""
        while not self._stop.is_set():
            try:
                if self._session is None:
                    self._session = self._xapi.open_session(timeout=self._poll + 30)
                    token = ""
                result = self._session.xenapi.event_from(CLASSES, token, float(self._poll))
                self.calls += 1
                self._apply(result["events"], full=token == "")
                self._recount(result["valid_ref_counts"])
                token = result["token"]
                self.connected = True
                if result["events"]:
                    self._stop.wait(self._pause)
            except (XenAPI.Failure, xmlrpc.client.Fault, XenError, *NETWORK_ERRORS) as error:
                # Fault: the client's own re-logins failed (it holds a fresh session now)
                log.warning("event watcher reconnecting after: %s", error)
                self.connected = False
                self._drop_session(error)
                self._stop.wait(self._retry)

    def _drop_session(self, error: BaseException) -> None:
        """Log out of the session we give up (xapi keeps sessions 24 h, 500 per originator),
        unless xapi stopped answering: then a logout would only wait out another timeout."""
        session, self._session = self._session, None
        if session is None:
            return
        if isinstance(error, TimeoutError):
            with contextlib.suppress(OSError):
                session("close")()
        else:
            self._xapi.end_session(session)

    def _recount(self, counts: dict[str, int]) -> None:
        """xapi counts fewer tasks than we know: some vanished with no `del` event. Read the
        tasks someone waits for again (HANDLE_INVALID: gone) and forget the others (a wait
        reads its task itself). A count above ours is harmless: tasks we never needed."""
        with self._cond:
            if counts.get("task", len(self._tasks)) >= len(self._tasks):
                return
            waited = [ref for ref in self._tasks if ref in self._waiting]
            forgotten = [ref for ref in self._tasks if ref not in self._waiting]
        log.info("xapi lost tasks without a word: reading %d waited-for tasks again", len(waited))
        records = {ref: ops.task_record(self._session.xenapi, ref) for ref in waited}
        with self._cond:
            for ref in forgotten:
                if ref not in self._waiting:  # a wait that began meanwhile keeps its record
                    self._tasks.pop(ref, None)
            for ref, record in records.items():
                if record is None:
                    self._gone(ref)
                else:
                    self._tasks[ref] = record
            self._cond.notify_all()

    def _gone(self, ref: str) -> None:
        """The task no longer exists: a waiter for it that never saw it end learns so."""
        old = self._tasks.pop(ref, None)
        if old is None or old["status"] == "pending":
            self._vanished.add(ref)

    def _apply(self, events: list[dict[str, Any]], full: bool) -> None:
        with self._cond:
            if full:
                present = {e["ref"] for e in events if e["class"] == "task"}
                lost = {ref for ref, r in self._tasks.items() if ref not in present}
                self._vanished |= {r for r in lost if self._tasks[r]["status"] == "pending"}
                for ref in lost:
                    self._tasks.pop(ref)
            for event in events:
                if event["class"] != "task":
                    continue
                if event["operation"] == "del":
                    self._gone(event["ref"])
                else:
                    self._tasks[event["ref"]] = event["snapshot"]
            self._cond.notify_all()
