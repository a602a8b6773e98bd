"""A stored request as its Slack messages show it: `Request` -> `blocks.Card` (pure).

Also the engine's texts (stored outcomes, event lines) as mrkdwn: escaped, people mentioned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.engine.requests import REFILABLE
from bot.planning.explain import explain
from bot.slack.blocks import Card, date_token, escape, mention
from bot.states import State
from bot.store.records import Request


def card(req: Request, *, approvers: str, require_approval: bool, pool: str | None = None) -> Card:
    return Card(
        id=req.id,
        revision=req.revision,
        state=str(req.state),
        requester=req.requester,
        summary=req.plan.get("summary", {}),
        shutdown=req.shutdown,
        require_approval=require_approval,
        approvers=approvers,
        status=status(req),
        run_at=req.run_at,
        stuck_host=req.plan.get("stuck_host_name"),
        retry_offline=retry_offline(req),
        refile=req.state == State.FAILED and (req.error or {}).get("code") in REFILABLE,
        parent_id=req.parent_id,
        pool=pool,
    )


def status(req: Request) -> str:
    """The mrkdwn status line beside the state: who approved, when it runs, how it ended."""
    parts = []
    if req.approved_by and req.approved_at:
        parts.append(f"approved by {mention(req.approved_by)} {date_token(req.approved_at)}")
    if req.state == State.RUNNING and req.started_at:
        parts.append(f"running since {date_token(req.started_at)}")
    if req.outcome and req.state != State.RUNNING:
        parts.append(with_people(req.outcome, req.people))
    return " · ".join(parts)


def retry_offline(req: Request) -> bool:
    """A failed live run whose error suggests the offline way."""
    if req.state != State.FAILED or req.mode != "live" or not req.error:
        return False
    return explain(req.error.get("description"), live=True).retry_offline


def with_people(text: str, people: Iterable[str | None]) -> str:
    """Escape engine text (it carries VM names) and mention the people it names: the ids
    its event or record says are people, and only where they stand as whole words."""
    shown = escape(text)
    for person in {p for p in people if p}:
        shown = _word(escape(person)).sub(mention(person), shown)
    return shown


def _word(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w@]){re.escape(word)}(?!\w)")
