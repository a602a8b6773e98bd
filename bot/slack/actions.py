"""The buttons' action ids: one enum that the blocks render, access judges and the desk runs.

Its own module (it imports only the shared ground) so that blocks/, access and desk can all
import it without a cycle. The values are on the wire: messages already posted carry them,
so a value is never changed, only added.
"""

from __future__ import annotations

from enum import StrEnum

from bot.models import Fix


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    START = "start"
    CANCEL = "cancel"
    RECHECK = "recheck"
    RETRY_OFFLINE = "retry_offline"
    REFILE = "refile"
    RESTART_TOOLSTACK = "restart_toolstack"
    REENABLE_HOST = "reenable_host"  # after an evacuation: host.enable
    # "fix_" + a bot.models.Fix value: the checklist remedy the button applies.
    FIX_SWITCH_TO_OFFLINE = "fix_switch_offline"
    FIX_DELETE_SNAPSHOTS = "fix_delete_snapshots"
    FIX_EXCLUDE_FROM_BACKUP = "fix_exclude_backup"
    FIX_HARD_SHUTDOWN = "fix_hard_shutdown"


# The remedy each fix button applies; an Action missing for a Fix fails here, at import.
FIXES: dict[Action, Fix] = {Action(f"fix_{fix}"): fix for fix in Fix}
