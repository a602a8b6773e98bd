"""After the move, what the guide has people check by eye: the guest agent reports again
on the destination with the addresses it had."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine import events as ev
from bot.engine.deadlines import GUEST_AGENT_WAIT_SECONDS
from bot.states import State
from tests.support.engine_rig import Rig, rig_for
from tests.support.pool import Pool


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(pool, tmp_path)


def moved(rig: Rig, command: str) -> int:
    req = rig.approved(command)
    assert rig.run(req.id).state == State.SUCCEEDED
    return req.id


def notes(rig: Rig, request_id: int) -> list[ev.Note]:
    return rig.of(ev.Note, request_id)


def test_the_agent_back_with_its_address_is_said_in_the_thread(rig: Rig) -> None:
    """vm02 moves live; its agent reports from host3 a few seconds later, same address."""
    address = rig.pool.x.VM_guest_metrics.get_networks(
        rig.pool.x.VM.get_guest_metrics(rig.pool.ref("VM", "vm02"))
    )["0/ip"]
    rid = moved(rig, "vm02 to host3")
    rig.engine.check_agent(rid)  # at once: the agent has not reported yet
    assert notes(rig, rid) == []
    rig.pool.clock.advance(rig.pool.sim.timing.guest_agent_s + 1)
    rig.engine.check_agent(rid)
    (note,) = notes(rig, rid)
    assert not note.warning and note.text.startswith("guest agent back after")
    assert note.text.endswith(f"{address} as before")
    rig.engine.check_agent(rid)
    assert len(notes(rig, rid)) == 1 and rig.engine.due() == []


def test_an_agent_that_stays_silent_is_a_warning_not_a_failure(rig: Rig) -> None:
    """dns01's agent never reports after its offline move: a warning, still succeeded."""
    rig.pool.sim.faults.silent_agents.add(rig.pool.ref("VM", "dns01"))
    rid = moved(rig, "dns01 to host3 mode=offline")
    rig.pool.clock.advance(GUEST_AGENT_WAIT_SECONDS + 1)
    assert ("agent", rid) in rig.engine.due()
    rig.engine.check_agent(rid)
    (note,) = notes(rig, rid)
    assert note.warning and "has not reported on host3" in note.text
    assert rig.store.get(rid).state == State.SUCCEEDED


def test_a_changed_address_is_a_warning(rig: Rig) -> None:
    """vm02 comes back on host3 with another address: the thread says both."""
    rig.pool.sim.faults.new_addresses[rig.pool.ref("VM", "vm02")] = "10.9.9.9"
    rid = moved(rig, "vm02 to host3")
    rig.pool.clock.advance(rig.pool.sim.timing.guest_agent_s + 1)
    rig.engine.check_agent(rid)
    (note,) = notes(rig, rid)
    assert note.warning and "addresses changed" in note.text and "10.9.9.9" in note.text


def test_halted_vms_and_vms_without_an_agent_are_not_watched(rig: Rig) -> None:
    """archive01 stays halted and legacy01 has no tools: nothing to wait for."""
    halted = moved(rig, "archive01 to host2")
    no_tools = moved(rig, "legacy01 to host2 sr=nfs1 mode=offline shutdown=hard")
    rig.pool.clock.advance(GUEST_AGENT_WAIT_SECONDS + 1)
    assert [d for d in rig.engine.due() if d[0] == "agent"] == []
    for rid in (halted, no_tools):
        rig.engine.check_agent(rid)
        assert notes(rig, rid) == []
