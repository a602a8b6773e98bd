"""Placement of a batch: largest first, spread by free memory, networks and storage reach
respected, halted VMs keep their disks, and a VM that fits nowhere says why and what would
make room."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from bot.models import NetworkFacts, PoolFacts, VMFacts
from bot.planning.placement import makespan, place
from tests.support.factories import NULL, GiB, halted, make_pool, make_vm, ref, uuid_of, with_host

HOSTS2_3 = [ref("host2"), ref("host3")]


def vm(name: str, gib: float, on: str = "host1", sr: str = "nfs1", **changes: object) -> VMFacts:
    """A running VM of `gib` memory (no overhead) on `on`, its disks on `sr`."""
    base = make_vm(sr)
    disks = tuple(
        replace(d, vdi_ref=ref(f"vdi-{name}-{d.userdevice}"), name=f"{name} {d.userdevice}")
        for d in base.disks
    )
    facts = replace(
        base,
        ref=ref(name),
        uuid=uuid_of(name),
        name=name,
        resident_on=ref(on),
        affinity=ref(on),
        memory_static_max=int(gib * GiB),
        memory_overhead=0,
        disks=disks,
        snapshots=(),
        snapshot_disks=(),
    )
    return replace(facts, **changes)


def pool(**free_gib: float) -> PoolFacts:
    facts = make_pool()
    for name, gib in free_gib.items():
        facts = with_host(facts, name, free_memory=int(gib * GiB))
    return facts


def where(placement) -> dict[str, str]:
    return {p.vm.name: p.host_ref.removeprefix("OpaqueRef:") for p in placement.placed}


def test_largest_first_each_to_the_host_with_most_memory_left() -> None:
    vms = [vm("a", 8), vm("b", 16), vm("c", 4), vm("d", 12), vm("e", 8)]
    placement = place(vms, pool(host2=32, host3=32), HOSTS2_3, evacuating=True)
    assert [p.vm.name for p in placement.placed] == ["b", "d", "a", "e", "c"]
    assert where(placement) == {
        "b": "host2",
        "d": "host3",
        "a": "host3",
        "e": "host2",
        "c": "host3",
    }
    assert placement.left == ()


def test_each_vm_is_judged_against_the_pool_as_the_vms_before_it_left_it() -> None:
    placement = place([vm("a", 8), vm("b", 4)], pool(host2=32, host3=10), [ref("host2")])
    first, second = placement.placed
    assert first.pool.hosts[ref("host2")].free_memory == 32 * GiB
    assert second.pool.hosts[ref("host2")].free_memory == 24 * GiB


def test_a_vm_that_fits_nowhere_blocks_and_says_what_would_make_room() -> None:
    placement = place([vm("big", 40), vm("small", 4)], pool(host2=30, host3=20), HOSTS2_3)
    assert where(placement) == {"small": "host2"}
    (left,) = placement.left
    assert left.blocks and left.vm.name == "big"
    assert left.why == (
        "big (40 GiB) fits on no host (host2: 30 GiB free; host3: 20 GiB free). "
        "Free 10 GiB on host2 (move or stop a VM there), or leave it out"
    )
    # Remedies follow the request: a named `to` can take another host; an evacuation
    # cannot leave a VM out, but a halted VM is not in the way.
    named = place([vm("big", 40)], pool(host2=30, host3=20), HOSTS2_3, chosen=True)
    assert named.left[0].why.endswith(
        "(move or stop a VM there), add a host to the plan, or leave it out"
    )
    emptying = place([vm("big", 40)], pool(host2=30, host3=20), HOSTS2_3, evacuating=True)
    assert emptying.left[0].why.endswith(
        "or shut it down for the maintenance (a halted VM is not in the way)"
    )


def test_a_vm_goes_only_where_its_networks_are() -> None:
    dmz = NetworkFacts(ref("net-dmz"), "dmz", frozenset({ref("host1"), ref("host2")}))
    facts = replace(pool(host2=10, host3=60), networks={**make_pool().networks, dmz.ref: dmz})
    proxy = vm("proxy", 4, networks=(dmz.ref,))
    assert where(place([proxy], facts, HOSTS2_3)) == {"proxy": "host2"}
    nowhere = place([proxy], facts, [ref("host3")])
    assert "host3: no dmz network" in nowhere.left[0].why
    assert nowhere.left[0].why.endswith("Add a host that has its networks, or leave it out")


def test_local_disks_need_sr_and_then_take_room_on_it() -> None:
    local = vm("db", 4, sr="local-host1")
    stuck = place([local], pool(), HOSTS2_3)
    assert stuck.left[0].blocks
    assert "host2, host3: no access to local-host1" in stuck.left[0].why
    assert "Give sr= an SR the other hosts reach" in stuck.left[0].why
    moved = place([local], pool(), HOSTS2_3, {ref("host2"): ref("nfs2"), ref("host3"): ref("nfs2")})
    assert where(moved) == {"db": "host2"}
    # nfs2 has 124 GiB free; the disks use 72 GiB, so a second copy of them does not fit.
    twice = place(
        [local, vm("db2", 4, sr="local-host1")],
        pool(),
        HOSTS2_3,
        {ref("host2"): ref("nfs2"), ref("host3"): ref("nfs2")},
    )
    assert len(twice.placed) == 1
    assert "nfs2 has 52 GiB left of the 72 GiB needed" in twice.left[0].why


def test_halted_vms_take_no_memory_and_stay_when_an_evacuation_cannot_take_their_disks() -> None:
    parked = halted(vm("parked", 64))
    placement = place([parked, vm("a", 8)], pool(host2=16, host3=12), HOSTS2_3, evacuating=True)
    assert where(placement) == {"a": "host2", "parked": "host3"}  # 12 GiB left beats 8
    assert placement.placed[1].pool.hosts[ref("host3")].free_memory == 12 * GiB
    local = halted(vm("old", 4, sr="local-host1"))
    stays = place([local], pool(), HOSTS2_3, evacuating=True)
    assert not stays.blocked and stays.placed == ()
    assert stays.left[0].why.endswith("it stays halted where it is (sr= would move its disks)")
    assert place([local], pool(), HOSTS2_3).blocked  # named in a list: it must move


def test_a_vm_already_on_a_chosen_host_stays_and_its_own_host_is_never_a_target() -> None:
    named = [vm("a", 4, on="host3"), vm("b", 4, on="host2")]
    placement = place(named, pool(), [ref("host3")], chosen=True)
    assert where(placement) == {"b": "host3"}
    assert placement.left[0].why == "a is on host3 already" and not placement.left[0].blocks
    lone = place([vm("c", 4, on="host2")], pool(), [ref("host2"), ref("host3")])
    assert where(lone) == {"c": "host3"}


def test_disabled_and_dead_hosts_take_nothing() -> None:
    facts = with_host(with_host(pool(), "host2", enabled=False), "host3", live=False)
    left = place([vm("a", 4)], facts, HOSTS2_3).left[0]
    assert "host2: disabled; host3: not live" in left.why


def test_makespan_keeps_every_slot_busy() -> None:
    assert makespan([10, 10, 10, 10], 3) == 20
    assert makespan([30, 10, 10, 10], 3) == 30
    assert makespan([], 3) == 0
    assert makespan([5, 5], 0) == 10  # no slots reads as one


@given(
    st.lists(st.integers(1, 24), min_size=1, max_size=30),
    st.lists(st.integers(0, 64), min_size=2, max_size=2),
    st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_no_host_is_given_more_memory_than_it_has(sizes, frees, running) -> None:
    vms = [
        vm(f"vm{n}", size) if running[n] else halted(vm(f"vm{n}", size))
        for n, size in enumerate(sizes)
    ]
    facts = pool(host2=frees[0], host3=frees[1])
    placement = place(vms, facts, HOSTS2_3, evacuating=True)
    assert len(placement.placed) + len(placement.left) == len(vms)
    for host in HOSTS2_3:
        taken = sum(
            p.vm.memory_needed
            for p in placement.placed
            if p.host_ref == host and p.vm.power_state == "Running"
        )
        assert taken <= facts.hosts[host].free_memory
    assert all(p.host_ref in HOSTS2_3 for p in placement.placed)
    assert all(left.vm.power_state == "Running" for left in placement.left if left.blocks)
    assert NULL not in {p.host_ref for p in placement.placed}
