"""`at=` text -> the UTC instant a scheduled migration starts, or a usage error.

Pure: `now` and the team's zone (`BOT_TIMEZONE`) come in as arguments, so tests pin the
daylight-saving edges without touching the clock. Wall times are read in that zone; a
wall time the zone skips is refused (guessing an hour either way could run a migration
in working hours), and one it repeats means its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.planning.command import BadCommand, quoted, usage_error

_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", re.ASCII)
_FORMS = "2026-11-26T02:00, 2026-11-26T02:00+01:00, 2026-11-26T01:00Z or HH:MM"


def resolve_at(text: str, now: datetime, tz: ZoneInfo) -> datetime | BadCommand:
    """The instant `at=<text>` names, in UTC, strictly after `now`; never raises on `text`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")  # a caller's bug, not the user's
    shown = quoted(f"at={text}")
    try:
        clock = _CLOCK.fullmatch(text.strip())
        if clock is not None:
            return _next_wall_time(time(int(clock[1]), int(clock[2])), now, tz, shown)
        return _absolute(text.strip(), now, tz, shown)
    except OverflowError:  # a year at the edge of datetime's range, pushed past it
        return usage_error(f"{shown} is out of range")


def _absolute(text: str, now: datetime, tz: ZoneInfo, shown: str) -> datetime | BadCommand:
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        return usage_error(f"{shown} is not a time: use {_FORMS}")
    if _is_date_only(text):
        return usage_error(f"{shown} is a date without a time: use {_FORMS}")
    if parsed.tzinfo is None:
        if not _exists(parsed, tz):
            return _gap(shown, tz)
        parsed = parsed.replace(tzinfo=tz, fold=0)
    instant = parsed.astimezone(UTC)
    if instant <= now:
        return usage_error(f"{shown} is in the past")
    return instant


def _next_wall_time(clock: time, now: datetime, tz: ZoneInfo, shown: str) -> datetime | BadCommand:
    """Today's `clock` in `tz` if still ahead, else tomorrow's, whichever comes first."""
    local_now = now.astimezone(tz)
    for days in range(3):  # three: a zone may skip a whole day (Pacific/Apia, 2011-12-30)
        wall = datetime.combine(local_now.date() + timedelta(days=days), clock)
        if not _exists(wall, tz):
            if wall > local_now.replace(tzinfo=None):
                return _gap(f"{shown} on {wall.date()}", tz)
            continue  # today's skipped hour is behind us: tomorrow's will do
        for fold in (0, 1):  # a repeated hour: the first occurrence, unless it has passed
            instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
            if instant > now:
                return instant
    return usage_error(f"{shown} does not occur in the next days in {tz}")


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    """Whether the naive `wall` time occurs in `tz`: a skipped one does not survive UTC."""
    return any(
        wall.replace(tzinfo=tz, fold=fold).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        == wall
        for fold in (0, 1)
    )


def _is_date_only(text: str) -> bool:
    try:
        date.fromisoformat(text.upper())
    except ValueError:
        return False
    return True


def _gap(shown: str, tz: ZoneInfo) -> BadCommand:
    return usage_error(
        f"{shown} does not exist in {tz}: the clocks skip that hour, pick another time"
    )
