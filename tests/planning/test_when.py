"""`at=` resolution: ISO 8601 and HH:MM, read in the team's zone, across daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.planning.command import USAGE, BadCommand
from bot.planning.when import resolve_at

PARIS = ZoneInfo("Europe/Paris")
UTC_ZONE = ZoneInfo("UTC")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00 in Paris (CET, +01:00)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T02:00", utc(2026, 11, 26, 2, 0)),
        ("2026-11-26T02:00:30", utc(2026, 11, 26, 2, 0, 30)),
        ("2026-11-26 02:00", utc(2026, 11, 26, 2, 0)),
        ("2026-11-26T02:00Z", utc(2026, 11, 26, 2, 0)),
        ("2026-11-26t02:00z", utc(2026, 11, 26, 2, 0)),
        ("2026-11-26T02:00+01:00", utc(2026, 11, 26, 1, 0)),
        ("2026-11-26T02:00-05:30", utc(2026, 11, 26, 7, 30)),
        (" 2026-11-26T02:00 ", utc(2026, 11, 26, 2, 0)),
    ],
)
def test_iso_in_utc(text: str, expected: datetime) -> None:
    """ISO 8601 with or without seconds, Z or an offset, resolves to that UTC instant."""
    assert resolve_at(text, NOW, UTC_ZONE) == expected


def test_iso_without_offset_is_read_in_the_zone() -> None:
    """A date-time without offset is a wall time in the team's zone, not in UTC."""
    assert resolve_at("2026-11-26T02:00", NOW, PARIS) == utc(2026, 11, 26, 1, 0)


def test_iso_with_offset_ignores_the_zone() -> None:
    """An explicit offset wins over the team's zone."""
    assert resolve_at("2026-11-26T02:00Z", NOW, PARIS) == utc(2026, 11, 26, 2, 0)


def test_result_is_aware_utc() -> None:
    """The result is always an aware datetime in UTC, whatever the input's offset."""
    result = resolve_at("2026-11-26T02:00+05:00", NOW, PARIS)
    assert isinstance(result, datetime)
    assert result.tzinfo is UTC


def test_clock_time_still_ahead_is_today() -> None:
    """HH:MM later today (in the zone) means today."""
    assert resolve_at("14:30", NOW, PARIS) == utc(2026, 11, 25, 13, 30)


def test_clock_time_passed_is_tomorrow() -> None:
    """HH:MM already past today (in the zone) means tomorrow."""
    assert resolve_at("02:00", NOW, PARIS) == utc(2026, 11, 26, 1, 0)


def test_clock_time_equal_to_now_is_tomorrow() -> None:
    """HH:MM equal to now is not strictly ahead, so it means tomorrow."""
    assert resolve_at("13:00", NOW, PARIS) == utc(2026, 11, 26, 12, 0)


def test_clock_time_uses_the_zone_date_not_utc_date() -> None:
    """'Today' is the zone's date: 23:30 UTC on the 25th is already the 26th in Paris."""
    late = utc(2026, 11, 25, 23, 30)  # 00:30 on the 26th in Paris
    assert resolve_at("01:00", late, PARIS) == utc(2026, 11, 26, 0, 0)


def test_clock_time_accepts_one_digit_hour() -> None:
    """'7:05' is read as 07:05."""
    assert resolve_at("7:05", NOW, UTC_ZONE) == utc(2026, 11, 26, 7, 5)


def test_clock_time_next_day_across_spring_forward() -> None:
    """Tomorrow's HH:MM after a spring-forward night is 23 hours of UTC later, not 24."""
    now = utc(2026, 3, 28, 12, 0)  # 13:00 CET; clocks go to CEST that night
    assert resolve_at("12:00", now, PARIS) == utc(2026, 3, 29, 10, 0)


@pytest.mark.parametrize(
    "text", ["2026-11-25T11:59", "2026-11-25T12:00", "2026-11-25T12:00Z", "2020-01-01T00:00"]
)
def test_past_iso_is_refused(text: str) -> None:
    """A time at or before now is a usage error naming it."""
    result = resolve_at(text, NOW, UTC_ZONE)
    assert isinstance(result, BadCommand)
    assert result.reason == f"'at={text}' is in the past"


def test_one_second_ahead_is_accepted() -> None:
    """Strictly after now is enough, however close."""
    assert resolve_at("2026-11-25T12:00:01Z", NOW, PARIS) == utc(2026, 11, 25, 12, 0, 1)


def test_spring_forward_gap_is_refused() -> None:
    """A wall time the clocks skip (Paris, last Sunday of March, 02:00-03:00) is refused."""
    result = resolve_at("2026-03-29T02:30", utc(2026, 3, 1), PARIS)
    assert isinstance(result, BadCommand)
    assert "'at=2026-03-29T02:30' does not exist in Europe/Paris" in result.reason


def test_gap_edges_exist() -> None:
    """The minute before the gap and its end both exist and map to the right instants."""
    now = utc(2026, 3, 1)
    assert resolve_at("2026-03-29T01:59", now, PARIS) == utc(2026, 3, 29, 0, 59)
    assert resolve_at("2026-03-29T03:00", now, PARIS) == utc(2026, 3, 29, 1, 0)


def test_clock_time_in_tonights_gap_is_refused() -> None:
    """HH:MM that falls in tonight's skipped hour is refused, not moved by a day."""
    result = resolve_at("02:30", utc(2026, 3, 28, 20, 0), PARIS)
    assert isinstance(result, BadCommand)
    assert "'at=02:30' on 2026-03-29 does not exist in Europe/Paris" in result.reason


def test_clock_time_after_todays_gap_is_tomorrow() -> None:
    """Once today's skipped hour is behind us, HH:MM in it means tomorrow's, which exists."""
    assert resolve_at("02:30", utc(2026, 3, 29, 8, 0), PARIS) == utc(2026, 3, 30, 0, 30)


def test_fall_back_overlap_means_first_occurrence() -> None:
    """A wall time that occurs twice (Paris, last Sunday of October) means the first, CEST."""
    assert resolve_at("2026-10-25T02:30", utc(2026, 10, 1), PARIS) == utc(2026, 10, 25, 0, 30)


def test_clock_time_in_overlap_means_first_occurrence() -> None:
    """HH:MM in tonight's repeated hour means its first occurrence."""
    assert resolve_at("02:30", utc(2026, 10, 24, 20, 0), PARIS) == utc(2026, 10, 25, 0, 30)


def test_clock_time_in_overlap_after_first_occurrence_is_the_second() -> None:
    """Between the two occurrences, HH:MM is the next one: the second, an hour later."""
    now = utc(2026, 10, 25, 0, 45)  # 02:45 CEST, the first pass through 02:xx
    assert resolve_at("02:30", now, PARIS) == utc(2026, 10, 25, 1, 30)


@pytest.mark.parametrize(
    "text",
    ["", "tomorrow", "25:00", "12:60", "2:3", "12h30", "now+5m", "2026-13-01T00:00", "1700000000"],
)
def test_garbage_is_refused_with_the_accepted_forms(text: str) -> None:
    """Anything but ISO 8601 or HH:MM is a usage error listing the forms that work."""
    result = resolve_at(text, NOW, PARIS)
    assert isinstance(result, BadCommand)
    assert "is not a time: use 2026-11-26T02:00" in result.reason
    assert "HH:MM" in result.reason
    assert USAGE in result.message


def test_date_without_time_is_refused() -> None:
    """A bare date does not silently mean midnight."""
    result = resolve_at("2026-11-26", NOW, PARIS)
    assert isinstance(result, BadCommand)
    assert "is a date without a time" in result.reason


def test_edge_of_datetime_range_is_a_usage_error() -> None:
    """A year that overflows once moved to UTC is refused, not raised."""
    result = resolve_at("9999-12-31T23:59-05:00", NOW, PARIS)
    assert isinstance(result, BadCommand)
    assert "out of range" in result.reason


def test_naive_now_is_a_programming_error() -> None:
    """A naive `now` is the caller's bug and raises, unlike anything the user types."""
    with pytest.raises(ValueError, match="aware"):
        resolve_at("02:00", datetime(2026, 11, 25, 12, 0), PARIS)


def test_now_in_any_offset_gives_the_same_answer() -> None:
    """`now` in a non-UTC offset is the same instant and gives the same result."""
    shifted = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert resolve_at("02:00", shifted, PARIS) == resolve_at("02:00", NOW, PARIS)


@given(st.text(max_size=40))
def test_resolve_at_never_raises_on_any_text(text: str) -> None:
    """Whatever follows at=, the answer is a future UTC instant or a BadCommand."""
    result = resolve_at(text, NOW, PARIS)
    if isinstance(result, datetime):
        assert result > NOW
        assert result.tzinfo is UTC
    else:
        assert isinstance(result, BadCommand)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(0, 23),
    st.integers(0, 59),
)
def test_clock_time_is_within_a_day_and_on_that_wall_time(
    naive_now: datetime, hour: int, minute: int
) -> None:
    """HH:MM resolves to the next instant showing that wall time, at most 25 hours ahead."""
    now = naive_now.replace(tzinfo=UTC)
    result = resolve_at(f"{hour:02d}:{minute:02d}", now, PARIS)
    if isinstance(result, BadCommand):
        assert "does not exist in Europe/Paris" in result.reason
        return
    assert now < result <= now + timedelta(hours=25)
    local = result.astimezone(PARIS)
    assert (local.hour, local.minute, local.second) == (hour, minute, 0)
