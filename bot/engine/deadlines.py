"""Deadlines judged from stored times against the clock (apscheduler only ticks): windows,
expiry, missed windows, the stuck grace, and the guest agent's report after a move."""

from __future__ import annotations

import enum
from typing import NamedTuple

from bot import messages as say
from bot.engine import events as ev
from bot.engine.part import Part
from bot.engine.stuck import RUN_ENDS
from bot.states import State
from bot.store.records import Request

RECENT_SECONDS = 86400.0  # how far back the ticker looks at ended runs
GUEST_AGENT_WAIT_SECONDS = 120.0  # how long a moved guest's agent has to report again


class Deadline(enum.StrEnum):
    STUCK = "stuck"  # a run's end past the grace (once), and every stuck request
    AGENT = "agent"  # a moved VM whose guest agent has not reported yet
    START = "start"  # a scheduled request whose window has come
    MISSED = "missed"  # a window that passed longer ago than the grace (the bot was down)
    EXPIRE = "expire"  # nobody approved it in time


class Due(NamedTuple):
    kind: Deadline
    request_id: int


class Deadlines(Part):
    def due(self) -> list[Due]:
        """What the ticker must do now. A request with a window may wait for approval until
        the window opens; a hand-made toolstack restart clears a stuck VM too, so every
        stuck request is looked at."""
        now, config = self.clock.now(), self.config
        grace = config.stuck_grace_seconds
        recent = now - grace - RECENT_SECONDS  # an end older than this was checked long ago
        work = [
            Due(Deadline.STUCK, r.id)
            for r in self.store.in_states(*RUN_ENDS, changed_since=recent)
            if not r.is_batch  # its children are checked, each for its VM
            and not r.plan.get("stuck_checked")
            and (r.finished_at or now) + grace <= now
        ]
        work += [Due(Deadline.STUCK, r.id) for r in self.store.in_states(State.STUCK)]
        work += [
            Due(Deadline.AGENT, r.id)
            for r in self.store.in_states(State.SUCCEEDED, changed_since=recent)
            if r.plan.get("agent_watch")
        ]
        for r in self.store.in_states(State.SCHEDULED):
            if r.run_at is not None and r.run_at <= now:
                late = now - r.run_at > config.missed_window_grace_seconds
                work.append(Due(Deadline.MISSED if late else Deadline.START, r.id))
        work += [
            Due(Deadline.EXPIRE, r.id)
            for r in self.store.in_states(State.PENDING)
            if max(r.created_at + config.approval_ttl_seconds, r.run_at or 0.0) <= now
        ]
        return work

    def expire(self, request_id: int) -> Request | None:
        """Nobody approved it in time: the buttons go, the thread says so."""
        req = self._get(request_id)
        text = say.expired(self.clock.now() - req.created_at)
        return self._move(req, State.EXPIRED, "bot", "expired", text, outcome=text)

    def miss(self, request_id: int) -> Request | None:
        """Its window passed while the bot was down, beyond the grace: it does not run."""
        req = self._get(request_id)
        late = self.clock.now() - (req.run_at or self.clock.now())
        text = say.missed(late, self.config.missed_window_grace_seconds)
        return self._move(req, State.MISSED, "bot", "missed", text, outcome=text)

    def mark_checked(self, request_id: int) -> None:
        req = self._get(request_id)
        self.store.update(req.id, plan={**req.plan, "stuck_checked": True})

    def start_window(self, request_id: int) -> Request | None:
        req = self._get(request_id)
        queued = self._move(req, State.QUEUED, "bot", "window_open", "its window has come: queued")
        if queued is not None:
            self._emit(ev.Queued(req.id))
        return queued

    def check_agent(self, request_id: int) -> None:
        """The guest agent reports again on the destination, with the addresses it had: said
        in the thread; one that stays silent or comes back changed is a warning, never a
        failure (the move itself is verified by placement)."""
        req = self._get(request_id)
        if not req.plan.get("agent_watch"):
            return
        landed = req.finished_at or self.clock.now()
        agent = self.xen.guest_agent(req.vm_uuid)
        before, after = sorted(req.plan.get("agent_before") or []), sorted(agent.addresses)
        if agent.live and agent.reported_at is not None and agent.reported_at >= landed - 1:
            took = max(0.0, agent.reported_at - landed)
            if after == before:
                note = ev.Note(req.id, say.agent_back(took, after), warning=False)
            else:
                changed = say.agent_changed(req.vm_name, req.dest_host_name, took, before, after)
                note = ev.Note(req.id, changed)
        elif self.clock.now() - landed >= GUEST_AGENT_WAIT_SECONDS:
            silent = say.agent_silent(req.vm_name, req.dest_host_name, GUEST_AGENT_WAIT_SECONDS)
            note = ev.Note(req.id, silent)
        else:
            return
        self.store.update(req.id, plan={**req.plan, "agent_watch": False})
        self._emit(note)
