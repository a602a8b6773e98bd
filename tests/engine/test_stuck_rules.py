"""Which restart clears a leftover (bot/engine/stuck.py): the pure rule, case by case."""

from __future__ import annotations

from bot.engine.stuck import is_stuck, remedy, would_cancel
from bot.models import HostLoad, Leftover

MASTER = HostLoad("r1", "u1", "host1", True, ("backup vm07",))
BUSY = HostLoad("r2", "u2", "host2", False, ("export vm09", "export vm10"))
IDLE = HostLoad("r3", "u3", "host3", False, ())
HOSTS = [MASTER, BUSY, IDLE]


def left(state: str) -> list[Leftover]:
    return [Leftover("t1", "pool_migrate", "the VM", state)]  # type: ignore[arg-type]


def test_a_running_task_is_not_stuck() -> None:
    """An operation whose task still runs is a migration under way, not a leftover."""
    assert not is_stuck(left("pending")) and not is_stuck([])
    assert is_stuck(left("gone")) and is_stuck(left("ended"))


def test_a_gone_task_needs_only_the_quietest_member() -> None:
    """Task gone: the member with the fewest pending tasks; the master is left alone."""
    assert remedy(left("gone"), HOSTS).host == IDLE


def test_members_the_bot_runs_on_or_tried_are_skipped() -> None:
    """A member one of the bot's runs uses, or one already restarted, is not offered."""
    assert remedy(left("gone"), HOSTS, busy={"u3"}).host == BUSY
    assert remedy(left("gone"), HOSTS, tried={"u3", "u2"}).host == MASTER


def test_a_task_record_that_remains_needs_the_master() -> None:
    """The record exists: no member's restart drops it; the master's does."""
    assert remedy(left("ended"), HOSTS).host == MASTER


def test_after_the_master_only_a_reboot_is_left() -> None:
    """Both tried and still there: no restart is offered (the guide's reboot is said)."""
    fix = remedy(left("ended"), HOSTS, tried={"u1"})
    assert fix.host is None and "did not clear" in fix.why


def test_what_a_restart_cancels() -> None:
    """A member's restart cancels its own tasks; the master's, every task in the pool."""
    assert would_cancel(IDLE, HOSTS) == ()
    assert would_cancel(MASTER, HOSTS) == ("backup vm07", "export vm09", "export vm10")
