"""Name resolution: UUID first, then exact name; helpful errors otherwise."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.errors import UserError
from bot.planning.resolve import (
    Ambiguous,
    NotFound,
    ResolveError,
    did_you_mean,
    disk_label,
    join_or,
    resolve,
    resolve_disk,
)
from tests.support.factories import host, make_vm, uuid_of

VMS = [
    replace(make_vm(), name=name, ref=f"OpaqueRef:{name}", uuid=uuid_of(name))
    for name in ("vm01", "vm02", "web", "db")
]


def test_uuid_matches_in_any_case():
    """A UUID typed in upper case still finds its VM."""
    assert resolve("VM", uuid_of("vm02").upper(), VMS).name == "vm02"


def test_uuid_wins_over_a_name_that_looks_like_it():
    """A VM whose name is another VM's UUID does not shadow that VM."""
    impostor = replace(VMS[0], name=uuid_of("db"), uuid=uuid_of("impostor"))
    assert resolve("VM", uuid_of("db"), [impostor, *VMS]).name == "db"


def test_exact_name_matches():
    """The exact name-label finds the VM."""
    assert resolve("VM", "web", VMS).ref == "OpaqueRef:web"


def test_surrounding_spaces_are_ignored():
    """Stray spaces around a pasted name do not cause a miss."""
    assert resolve("VM", "  vm01 ", VMS).name == "vm01"


def test_typo_suggests_the_closest_name():
    """A near miss names the VM the user probably meant, in design.md's wording."""
    with pytest.raises(NotFound) as caught:
        resolve("VM", "vm0l", VMS)
    assert str(caught.value).startswith("no VM 'vm0l'; did you mean vm01")
    assert caught.value.suggestions[0] == "vm01"


def test_name_match_is_case_sensitive_but_suggests_the_other_case():
    """'VM01' is not vm01 (names are exact) yet vm01 is suggested."""
    with pytest.raises(NotFound) as caught:
        resolve("VM", "VM01", VMS)
    assert "vm01" in caught.value.suggestions


def test_single_suggestion_message_is_exact():
    """One close name reads 'did you mean x?'."""
    with pytest.raises(NotFound, match=r"^no host 'hots3'; did you mean host3\?$"):
        resolve("host", "hots3", [host("host3")])


def test_at_most_three_suggestions_joined_with_or():
    """Many similar names give three suggestions, listed as 'a, b or c'."""
    many = [replace(VMS[0], name=f"vm0{i}", uuid=uuid_of(f"vm0{i}")) for i in range(1, 8)]
    with pytest.raises(NotFound) as caught:
        resolve("VM", "vm0", many)
    assert len(caught.value.suggestions) == 3
    assert " or " in str(caught.value)


def test_nothing_close_gives_no_suggestion():
    """A name unlike any other gets just 'no VM ...'."""
    with pytest.raises(NotFound) as caught:
        resolve("VM", "zzzzzz", VMS)
    assert str(caught.value) == "no VM 'zzzzzz'"


def test_empty_text_is_not_found_without_suggestions():
    """An empty name never matches a nameless object nor suggests anything."""
    with pytest.raises(NotFound) as caught:
        resolve("VM", " ", [*VMS, replace(VMS[0], name="")])
    assert caught.value.suggestions == ()


def test_ambiguous_name_lists_uuids_with_descriptions():
    """Two VMs called 'web' ask for the UUID and say where each runs."""
    twins = [replace(VMS[2], uuid=uuid_of("web-a")), replace(VMS[2], uuid=uuid_of("web-b"))]
    with pytest.raises(Ambiguous) as caught:
        resolve("VM", "web", twins, describe=lambda vm: f"on {vm.uuid[:4]}")
    message = str(caught.value)
    assert message.startswith("2 VMs are named 'web'; give the UUID")
    for twin in twins:
        assert f"{twin.uuid} (on {twin.uuid[:4]})" in message
    assert caught.value.choices == tuple((t.uuid, f"on {t.uuid[:4]}") for t in twins)


def test_ambiguous_without_describe_lists_bare_uuids():
    """Without a describer the choices are the UUIDs alone."""
    twins = [replace(VMS[2], uuid=uuid_of("a")), replace(VMS[2], uuid=uuid_of("b"))]
    with pytest.raises(Ambiguous) as caught:
        resolve("VM", "web", twins)
    assert str(caught.value).endswith(f"{uuid_of('a')}; {uuid_of('b')}")


def test_errors_are_user_errors():
    """Callers catch every resolution failure as ResolveError, a UserError: its message is
    for the person who typed the name."""
    assert issubclass(NotFound, ResolveError)
    assert issubclass(Ambiguous, ResolveError)
    assert issubclass(ResolveError, UserError)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("0", "vm01 root"),
        ("1", "vm01 data"),
        ("xvdb", "vm01 data"),
        ("XVDA", "vm01 root"),
        (uuid_of("vdi-vm01 data").upper(), "vm01 data"),
        ("vm01 root", "vm01 root"),
    ],
)
def test_disk_selector_forms(selector, expected):
    """disk:<n>= accepts userdevice, device, VDI UUID or VDI name."""
    assert resolve_disk(selector, make_vm().disks).name == expected


def test_userdevice_wins_over_a_vdi_named_like_it():
    """'1' is the disk at position 1 even when another VDI is named '1'."""
    vm = make_vm()
    root = replace(vm.disks[0], name="1")
    assert resolve_disk("1", (root, vm.disks[1])).userdevice == "1"


def test_unknown_disk_lists_every_disk():
    """An unknown selector lists the VM's disks as '0 (xvda, 'vm01 root')'."""
    with pytest.raises(NotFound) as caught:
        resolve_disk("xvdq", make_vm().disks)
    assert str(caught.value) == (
        "no disk 'xvdq'; did you mean 0 (xvda, 'vm01 root') or 1 (xvdb, 'vm01 data')?"
    )


def test_duplicate_vdi_names_are_ambiguous():
    """Two disks with one name ask for the VDI UUID."""
    vm = make_vm()
    disks = (vm.disks[0], replace(vm.disks[1], name="vm01 root"))
    with pytest.raises(Ambiguous, match="2 disks are named 'vm01 root'"):
        resolve_disk("vm01 root", disks)


def test_disk_label_without_device():
    """A never-attached disk (no device yet) is labelled by position and name only."""
    assert disk_label(replace(make_vm().disks[0], device="")) == "0 ('vm01 root')"


@pytest.mark.parametrize(
    ("items", "text"),
    [([], ""), (["a"], "a"), (["a", "b"], "a or b"), (["a", "b", "c"], "a, b or c")],
)
def test_join_or(items, text):
    """Alternatives read as a person lists them."""
    assert join_or(items) == text


def test_did_you_mean_deduplicates_names():
    """Two VMs with one name are suggested once."""
    assert did_you_mean("web1", ["web", "web", "db"]) == ["web"]
