"""The "Migrate VM" modal and its option lists: ids, limits, per-disk selects, the three
forms (one VM, several, a host to empty), and what a submitted form files."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.planning.command import BadCommand, BatchCommand, MigrateCommand
from bot.slack.blocks import MODAL_ID, migrate_modal, options
from bot.slack.blocks.modal import MOST_HOSTS, MOST_VMS, SEARCHES
from bot.slack.modal_form import command_from, error_block
from tests.slack.blockkit import LONG, assert_limits


def test_modal_shape_and_ids():
    """The modal has the fixed callback, title, buttons, metadata and block/action ids."""
    sr_options = [{"text": "nfs1", "value": "uuid-1"}]
    disks = [{"userdevice": "0", "device": "xvda", "size": "40 GiB", "sr": "host1-local"}]
    view = migrate_modal("C1", {"text": "vm01", "value": "uuid-vm"}, disks, sr_options, "live")
    assert (view["type"], view["callback_id"], MODAL_ID) == (
        "modal",
        "migrate_modal",
        "migrate_modal",
    )
    assert [view[k]["text"] for k in ("title", "submit", "close")] == [
        "Migrate VM",
        "Check",
        "Cancel",
    ]
    assert json.loads(view["private_metadata"]) == {"channel": "C1"}
    ids = [(b["block_id"], b["element"]["action_id"]) for b in view["blocks"]]
    assert ids == [
        ("what", "what"),
        ("vm", "vm"),
        ("host", "host"),
        ("sr", "sr"),
        ("disk_0", "disk"),
        ("mode", "mode"),
        ("shutdown", "shutdown"),
        ("at", "at"),
    ]
    what, vm_block = view["blocks"][:2]
    assert what["dispatch_action"] is True
    assert what["element"]["initial_option"]["value"] == "one"
    assert vm_block["dispatch_action"] is True
    assert vm_block["element"]["min_query_length"] == 1
    assert vm_block["element"]["initial_option"]["value"] == "uuid-vm"
    assert view["blocks"][4]["label"]["text"] == "Disk 0 (xvda, 40 GiB) on host1-local"
    assert view["blocks"][5]["element"]["initial_option"]["value"] == "live"
    assert view["blocks"][7]["element"]["placeholder"]["text"] == "02:00 or 2026-11-26T02:00"
    assert [b["optional"] for b in view["blocks"]] == [
        False,
        False,
        False,
        True,
        True,
        False,
        False,
        True,
    ]


def test_modal_limits_hold_with_many_disks_and_srs():
    """With 120 disks and 150 SRs the modal keeps 100 blocks, 100 options, 24-char titles."""
    sr_options = [{"text": LONG, "value": LONG} for _ in range(150)]
    disks = [{"userdevice": str(n), "device": "", "size": "1 GiB", "sr": LONG} for n in range(120)]
    view = migrate_modal("C1", None, disks, sr_options)
    assert_limits(view, max_blocks=100)
    assert all(len(view[k]["text"]) <= 24 for k in ("title", "submit", "close"))
    assert view["blocks"][-1]["type"] == "context"


def test_modal_without_srs_has_no_disk_selects():
    """Before a VM is chosen (no SR options) there are no per-disk selects."""
    view = migrate_modal("C1")
    assert [b["block_id"] for b in view["blocks"]] == [
        "what",
        "vm",
        "host",
        "sr",
        "mode",
        "shutdown",
        "at",
    ]


def test_options_are_capped_and_clipped():
    """An options reply holds at most 100 options with clipped text and value."""
    reply = options([(LONG, LONG)] * 150)
    assert len(reply["options"]) == 100
    assert_limits({"blocks": [], **reply})
    assert options([("vm01", "uuid")]) == {
        "options": [{"text": {"type": "plain_text", "text": "vm01"}, "value": "uuid"}]
    }


def ids(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["block_id"], b["element"]["action_id"]) for b in view["blocks"]]


def test_the_forms_for_several_vms_and_for_a_host():
    """`what` picks the fields, as the command's grammar does; an unknown one is one VM."""
    several = migrate_modal("C1", what="several")
    assert ids(several) == [
        ("what", "what"),
        ("vms", "vms"),
        ("tag", "tag"),
        ("to", "hosts"),
        ("sr", "sr"),
        ("mode", "mode"),
        ("shutdown", "shutdown"),
        ("at", "at"),
    ]
    assert several["blocks"][0]["element"]["initial_option"]["value"] == "several"
    vms, tag, to = several["blocks"][1:4]
    assert vms["element"]["type"] == to["element"]["type"] == "multi_external_select"
    assert (vms["optional"], tag["optional"], to["optional"]) == (True, True, True)
    assert vms["element"]["max_selected_items"] == MOST_VMS
    assert to["element"]["max_selected_items"] == MOST_HOSTS
    evacuate = migrate_modal("C1", what="evacuate")
    assert ids(evacuate) == [
        ("what", "what"),
        ("evacuate", "host"),
        ("to", "hosts"),
        ("mode", "mode"),
        ("shutdown", "shutdown"),
        ("at", "at"),
    ]
    assert evacuate["blocks"][1]["optional"] is False
    assert ids(migrate_modal("C1", what="junk")) == ids(migrate_modal("C1"))


def test_every_form_keeps_the_limits_and_every_search_has_a_listener():
    """Each form holds Slack's limits, and each external select's action id is one the
    handlers answer options for."""
    for what in ("one", "several", "evacuate"):
        view = migrate_modal("C1", what=what)
        assert_limits(view, max_blocks=100)
        searched = {
            b["element"]["action_id"]
            for b in view["blocks"]
            if b["element"]["type"].endswith("external_select")
        }
        assert searched <= SEARCHES.keys()


def select(value: str) -> dict[str, Any]:
    return {"a": {"type": "external_select", "selected_option": {"value": value}}}


def multi(*values: str) -> dict[str, Any]:
    chosen = [{"value": v} for v in values]
    return {"a": {"type": "multi_external_select", "selected_options": chosen}}


def text(value: str | None) -> dict[str, Any]:
    return {"a": {"type": "plain_text_input", "value": value}}


def form(what: str, **fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "what": {"what": {"type": "radio_buttons", "selected_option": {"value": what}}},
        **fields,
    }


def test_a_submitted_form_files_what_the_command_would():
    """Each form reads as the command people type: one VM, a list, a tag, an evacuation."""
    assert command_from(form("one", vm=select("u-vm"), host=select("u-h3"))) == MigrateCommand(
        "u-vm", "u-h3"
    )
    listed = form(
        "several",
        vms=multi("u-vm1", "u-vm2", "u-vm1"),
        to=multi("u-h2", "u-h3"),
        sr=select("u-nfs1"),
        mode=select("offline"),
        shutdown=select("hard"),
        at=text(" 02:00 "),
    )
    assert command_from(listed) == BatchCommand(
        vms=("u-vm1", "u-vm2"),
        to=("u-h2", "u-h3"),
        sr="u-nfs1",
        mode="offline",
        shutdown="hard",
        at="02:00",
    )
    tagged = form("several", vms=multi(), tag=text("web servers"))
    assert command_from(tagged) == BatchCommand(tag="web servers")
    typed = form("several", vms=multi(), tag=text("tag:web"))  # as on the command line
    assert command_from(typed) == BatchCommand(tag="web")
    emptied = form("evacuate", evacuate=select("u-h1"), to=multi("u-h2"), mode=select("live"))
    assert command_from(emptied) == BatchCommand(evacuate="u-h1", to=("u-h2",), mode="live")


def test_the_most_a_form_may_choose_still_reads_as_a_command():
    """40 VMs and 10 hosts (UUIDs), an SR, every option and a long time fit the grammar."""
    uuid = "6e59b925-2f58-4640-ad99-b8ee3c0b3b98"
    biggest = form(
        "several",
        vms=multi(*(f"{n:02}{uuid[2:]}" for n in range(MOST_VMS))),
        to=multi(*(f"{n:02}{uuid[2:]}" for n in range(MOST_HOSTS))),
        sr=select(uuid),
        mode=select("offline"),
        shutdown=select("hard"),
        at=text("2026-11-26T02:00:00+01:00"),
    )
    assert isinstance(command_from(biggest), BatchCommand)


def test_a_form_that_cannot_file_says_why_under_its_first_field():
    """Refusals are one sentence under the form's first field, never an exception."""
    cases = [
        (form("several", vms=multi("a", "b"), tag=text("web")), "vms", "not both"),
        (form("several"), "vms", "choose VMs or give a tag"),
        (form("several", vms=multi("a")), "vms", "for one VM, choose One VM"),
        (form("several", tag=text("a\u0007b")), "vms", "control character"),
        (form("several", tag=text("\u201cweb\u201d")), "vms", "drop its quotes"),
        (form("evacuate", to=multi("h2")), "evacuate", "choose the host to empty"),
        (form("one", vm=select("v")), "vm", "choose a VM and a destination host"),
        (
            form(
                "one",
                vm=select("v"),
                host=select("h"),
                mode=select("live"),
                shutdown=select("hard"),
            ),
            "vm",
            "shutdown=hard applies to offline migrations",
        ),
    ]
    for values, block, reason in cases:
        refused = command_from(values)
        assert isinstance(refused, BadCommand), values
        assert reason in refused.reason, refused.reason
        assert error_block(values) == block


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def state(kind: str, *values: str) -> st.SearchStrategy[Any]:
    """A block's state: its element holding one of `values` or any text, mostly; or junk."""
    value = st.one_of(st.sampled_from(values), st.sampled_from(values), st.text(max_size=10))
    if kind == "multi":
        element = st.builds(
            lambda vs: {"selected_options": [{"value": v} for v in vs]}, st.lists(value, max_size=4)
        )
    elif kind == "text":
        element = st.builds(lambda v: {"value": v}, value)
    else:
        element = st.builds(lambda v: {"selected_option": {"value": v}}, value)
    proper = st.builds(lambda e: {"a": e}, element)
    return st.one_of(proper, proper, proper, junk)


names = ("u-1", "u-2", "web", "")
forms = st.fixed_dictionaries(
    {"what": state("select", "one", "several", "evacuate")},
    optional={
        **{block: state("select", *names) for block in ("vm", "host", "evacuate", "sr")},
        **{block: state("multi", *names) for block in ("vms", "to")},
        "tag": state("text", "web", "a b", "\u201cq\u201d", "x\ny"),
        "mode": state("select", "live", "offline", "auto"),
        "shutdown": state("select", "clean", "hard"),
        "at": state("text", "02:00", " "),
        "disk_0": state("select", *names),
    },
)


@given(values=st.one_of(forms, forms, forms, junk))
def test_any_payload_is_a_command_or_a_refusal(values: Any) -> None:
    """Whatever the payload's shape, the form reads as a command or a usage error."""
    command = command_from(values)
    assert isinstance(command, MigrateCommand | BatchCommand | BadCommand)
    assert error_block(values) in ("vm", "vms", "evacuate")
