"""`migrate-bot audit`: the audit log as JSON lines or CSV, one event per line.

Pure but for the writer it is given: `since` parsing and row shaping are tested directly.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.errors import UserError
from bot.store.records import AuditEvent

FIELDS = ("at", "request_id", "actor", "action", "details")
_RELATIVE = re.compile(r"(\d+)\s*([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class SinceError(UserError):
    """`--since` is neither a duration (30m, 24h, 7d) nor an ISO 8601 date or time."""


def parse_since(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """`7d`, `24h`, `30m` back from `now`; or an ISO date/time (read in `tz` without offset)."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SinceError(
            f"--since {text!r}: use a duration (30m, 24h, 7d) or ISO 8601 (2026-11-26T02:00)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=tz)


def row(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": datetime.fromtimestamp(event.at, UTC).isoformat(timespec="seconds"),
        "request_id": event.request_id,
        "actor": event.actor,
        "action": event.action,
        "details": event.details,
    }


def write(events: Iterable[AuditEvent], fmt: str, out: TextIO) -> int:
    """Write the events; how many were written."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, FIELDS)
        writer.writeheader()
        for event in events:
            line = row(event)
            writer.writerow({**line, "details": json.dumps(line["details"], ensure_ascii=False)})
            count += 1
        return count
    for event in events:
        out.write(json.dumps(row(event), ensure_ascii=False) + "\n")
        count += 1
    return count
