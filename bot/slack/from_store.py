"""A stored request as its Slack messages show it: `Request` -> `blocks.Card` (pure).

Also the engine's texts (stored outcomes, event lines) as mrkdwn: escaped, people mentioned.
"""

from __future__ import annotations

import re

from bot.engine.requests import REFILABLE
from bot.planning.explain import explain
from bot.slack.blocks import Card, date_token, escape, mention
from bot.states import State
from bot.store.records import Request

# Engine texts name people as "approved by U123" or start with them ("U123 deleted ..."):
# only those places become mentions, never a VM name that happens to look like an id.
_ACTOR = re.compile(r"(^|\bby )([UW][A-Z0-9]{1,30})\b")


def card(req: Request, *, approvers: str, require_approval: bool) -> Card:
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
    )


def status(req: Request) -> str:
    """The mrkdwn status line beside the state: who approved, when it runs, how it ended."""
    parts = []
    if req.approved_by and req.approved_at:
        parts.append(f"approved by {mention(req.approved_by)} {date_token(req.approved_at)}")
    if req.state == State.RUNNING and req.started_at:
        parts.append(f"running since {date_token(req.started_at)}")
    if req.outcome and req.state != State.RUNNING:
        parts.append(with_mentions(req.outcome))
    return " · ".join(parts)


def retry_offline(req: Request) -> bool:
    """A failed live run whose error suggests the offline way."""
    if req.state != State.FAILED or req.mode != "live" or not req.error:
        return False
    return explain(req.error.get("description"), live=True).retry_offline


def with_mentions(text: str) -> str:
    """Escape engine text (it carries VM names) and turn the people it names into mentions."""
    return _ACTOR.sub(lambda m: m.group(1) + mention(m.group(2)), escape(text))
