"""Names people type on real pools, where every host's local SR is "Local storage": the
bot takes `sr=local` and `sr="Local storage on host3"`, and never picks one silently."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.planning.planner import UserError
from tests.support.engine_rig import Rig, build
from tests.support.pool import Pool, scenario_pool

POOL = {
    "pool": "real",
    "hosts": [{"name": f"xen{n}", "master": n == 1} for n in (1, 2, 3)],
    "srs": [
        {"name": "SAN", "type": "lvmoiscsi", "size_gib": 4000, "used_gib": 1000},
        *(
            {"name": "Local storage", "host": f"xen{n}", "type": "ext", "size_gib": 900}
            for n in (1, 2, 3)
        ),
    ],
    "vms": [{"name": "app01", "host": "xen1", "disks": [{"size_gib": 20, "sr": "SAN"}]}],
}


@pytest.fixture
def real() -> Iterator[Pool]:
    yield from scenario_pool(POOL)


@pytest.fixture
def rig(real: Pool, tmp_path: Path) -> Iterator[Rig]:
    rig = build(real, tmp_path / "bot.db")
    yield rig
    rig.close()


def disk_sr(rig: Rig, text: str) -> str:
    preview = rig.engine.preview(rig.command(text))
    (move,) = preview.plan.disks
    return preview.sr_name(move.dest_sr_ref)


def test_sr_local_is_the_destinations_own_sr(rig: Rig) -> None:
    """`sr=local` on a move to xen3 is xen3's Local storage, shown with its host."""
    assert disk_sr(rig, "app01 to xen3 sr=local") == "Local storage on xen3"


def test_a_name_with_its_host_picks_that_one(rig: Rig) -> None:
    """`sr="Local storage on xen3"` is that SR, whatever the others are called."""
    assert disk_sr(rig, 'app01 to xen3 sr="Local storage on xen3"') == "Local storage on xen3"


def test_a_shared_name_alone_is_never_picked_silently(rig: Rig) -> None:
    """`sr="Local storage"` names three SRs: the answer lists them the way to type them."""
    with pytest.raises(UserError) as refused:
        rig.engine.preview(rig.command('app01 to xen3 sr="Local storage"'))
    text = str(refused.value)
    for n in (1, 2, 3):
        assert f'sr="Local storage on xen{n}"' in text


def test_the_checklist_names_local_srs_with_their_host(rig: Rig) -> None:
    """Free space and reach lines say which Local storage they mean."""
    preview = rig.engine.preview(rig.command("app01 to xen2 sr=local"))
    (space,) = [c for c in preview.checks if c.key == "space"]
    assert space.reason.startswith("Local storage on xen2 has")
