"""Pure Block Kit builders: dicts in, dicts out; no I/O, no Slack client, no clock reads.

- `kit`: escaping, clipping to Slack's limits, text objects and blocks (the escaping rule).
- `card`: `Card`, the request as its messages show it (header, plan, disks, checklist).
- `buttons`: the buttons per state, their confirm dialogs and button values (the action ids
  are `bot.slack.actions.Action`).
- `request`: the request message, dry run, `/migrate list` and `/migrate status`.
- `thread`: steps, outcome, stuck and stalled notices in the thread; ephemeral replies.
- `modal`: the "Migrate VM" modal and `block_suggestion` option lists.
- `home`: the Home tab.
"""

from bot.slack.blocks.buttons import button_value, parse_button_value
from bot.slack.blocks.card import Card
from bot.slack.blocks.kit import Message, date_token, escape, mention
from bot.slack.blocks.modal import MODAL_ID, SHORTCUT_ID, migrate_modal, options
from bot.slack.blocks.request import dry_run_message, request_list, request_message, request_status
from bot.slack.blocks.thread import (
    notice,
    outcome_message,
    stalled_message,
    step_message,
    stuck_message,
    thread_line,
    usage_message,
)

__all__ = [
    "MODAL_ID",
    "SHORTCUT_ID",
    "Card",
    "Message",
    "button_value",
    "date_token",
    "dry_run_message",
    "escape",
    "mention",
    "migrate_modal",
    "notice",
    "options",
    "outcome_message",
    "parse_button_value",
    "request_list",
    "request_message",
    "request_status",
    "stalled_message",
    "step_message",
    "stuck_message",
    "thread_line",
    "usage_message",
]
