"""Messages in a request's thread (steps, outcome, stuck, stalled) and ephemeral replies.

Escaping: `thread_line` takes mrkdwn (the caller escapes the names in it and may mention
people); every other `str` argument here is plain text and is escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.planning.units import format_duration, progress_bar
from bot.slack.blocks.buttons import cancel, refile, restart_toolstack, retry_offline
from bot.slack.blocks.card import Card
from bot.slack.blocks.kit import (
    SECTION,
    Message,
    actions,
    clip,
    context,
    date_token,
    escape,
    mention,
    message,
    name,
    section,
)

BAR_WIDTH = 10  # fits a phone's thread view


def thread_line(text: str, at: float, icon: str = "") -> Message:
    """`icon text · <date>`: a state change or step in the thread. `text` is mrkdwn."""
    line = f"{icon} {text}" if icon else text
    return message(line, [context(f"{clip(line, 2800)} · {date_token(at)}")])


def step_message(
    step_text: str,
    fraction: float | None,
    eta_seconds: float | None,
    state: str,
    seconds: float | None,
    at: float,
) -> Message:
    """The running step, edited in place: bar and ETA, then how it ended."""
    step = name(step_text, 200)
    bar = f"  `{progress_bar(fraction, BAR_WIDTH)}`" if fraction is not None else ""
    took = f" {format_duration(seconds)}" if seconds is not None else ""
    if state == "done":
        line = f"✅ {step} done" + (f" in{took}" if took else "")
    elif state == "failed":
        line = f"❌ {step} failed" + (f" after{took}" if took else "")
    elif state == "stalled":
        line = f"⚠️ {step}{bar} · no progress for{took or ' a while'}"
    else:
        eta = f" · ETA {format_duration(eta_seconds)}" if eta_seconds is not None else ""
        line = f"⏳ {step}{bar}{eta}"
    return message(line, [section(f"{line} · {date_token(at)}")])


def outcome_message(
    card: Card, success: bool, text: str, next_step: str = "", vm_down: bool = False
) -> Message:
    """The final reply (broadcast to the channel): where the VM is, or what went wrong."""
    icon = "✅" if success else "❌"
    blocks: list[dict[str, Any]] = []
    if vm_down:
        loud = f"🚨 *{name(card.vm)} is DOWN*"
        blocks.append(section(f"{loud} {card.approvers}".strip()))
    blocks.append(section(f"{icon} {escape(text)}"))
    if not success and next_step:
        blocks.append(section(f"*Next:* {escape(next_step)}"))
    blocks.append(context(f"#{card.id} · requested by {mention(card.requester)}"))
    if not success and card.retry_offline:
        blocks.append(actions([retry_offline(card)], block_id=f"outcome:{card.id}"))
    if not success and card.refile:
        blocks.append(actions([refile(card)], block_id=f"outcome:{card.id}"))
    down = f"🚨 {card.vm} is DOWN: " if vm_down else ""
    return message(escape(f"{down}{icon} #{card.id} {text}"), blocks)


def stuck_message(card: Card, text: str, other_tasks: list[str]) -> Message:
    """The VM keeps a migrate operation: offer the toolstack restart that clears it."""
    blocks = [section(f"⚠️ {escape(text)}")]
    if other_tasks:
        blocks.append(
            section(clip("Also running there: " + escape(", ".join(other_tasks)), SECTION))
        )
    if card.stuck_host:
        who = f"approvers: {card.approvers}" if card.approvers else "approvers only"
        blocks.append(context(f"Restart toolstack on {name(card.stuck_host)}: {who}"))
        blocks.append(actions([restart_toolstack(card, other_tasks)], block_id=f"stuck:{card.id}"))
    return message(escape(f"⚠️ #{card.id} {text}"), blocks)


def stalled_message(card: Card, step: str, seconds: float) -> Message:
    """A step without progress: said, not killed; Cancel is one press away."""
    line = (
        f"⚠️ #{card.id} {name(card.vm)}: {name(step)} has made no progress for "
        f"{format_duration(seconds)}. It keeps running; Cancel asks xapi to stop it."
    )
    blocks = [section(line), actions([cancel(card, running=True)], block_id=f"stalled:{card.id}")]
    return message(line, blocks)


def usage_message(text: str) -> Message:
    """An ephemeral usage error: the usage in a code block."""
    return message(escape(text.splitlines()[0] if text else "usage"), [_code(text)])


def notice(text: str, icon: str = "", render: Callable[[str], str] = escape) -> Message:
    """An ephemeral refusal or confirmation: one section of text, escaped by `render`."""
    line = f"{icon} {render(text)}" if icon else render(text)
    return message(line, [section(line)])


def _code(text: str) -> dict[str, Any]:
    return section(f"```{clip(escape(text), SECTION - 6)}```")
