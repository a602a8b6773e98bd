"""The `/migrate` grammar: a table of good inputs, a table of refusals, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.planning.command import (
    USAGE,
    BadCommand,
    BatchCommand,
    Cancel,
    Enable,
    Help,
    ListRequests,
    MigrateCommand,
    OpenModal,
    Status,
    parse,
    parse_request_id,
    render,
    usage_error,
)

GOOD = [
    ("", OpenModal()),
    ("   \t ", OpenModal()),
    ("help", Help()),
    ("HELP", Help()),
    ("list", ListRequests()),
    ("status", ListRequests()),
    ("status 42", Status("#42")),
    ("status #42", Status("#42")),
    ("Status #007", Status("#7")),
    ("status vm01", Status("vm01")),
    ('status "web server"', Status("web server")),
    ("cancel 42", Cancel(42)),
    ("CANCEL #42", Cancel(42)),
    ("vm01 to host3", MigrateCommand("vm01", "host3")),
    (
        "vm01 to host3 sr=nfs1 mode=offline",
        MigrateCommand("vm01", "host3", sr="nfs1", mode="offline"),
    ),
    (
        "VM01 TO Host3 SR=NFS1 MODE=Live",
        MigrateCommand("VM01", "Host3", sr="NFS1", mode="live"),
    ),
    (
        "vm01 to host3 dry-run at=02:00 disk:1=ssd disk:xvdb=nfs1 sr=local",
        MigrateCommand(
            "vm01",
            "host3",
            sr="local",
            disks=(("1", "ssd"), ("xvdb", "nfs1")),
            at="02:00",
            dry_run=True,
        ),
    ),
    ("vm01 to host3 --DRY-RUN", MigrateCommand("vm01", "host3", dry_run=True)),
    (
        "vm01 to host3 mode=offline shutdown=hard",
        MigrateCommand("vm01", "host3", mode="offline", shutdown="hard"),
    ),
    ("vm01 to host3 shutdown=HARD", MigrateCommand("vm01", "host3", shutdown="hard")),
    ("vm01 to host3 shutdown=clean", MigrateCommand("vm01", "host3")),
    ('"web server" to host3', MigrateCommand("web server", "host3")),
    ("'web server' to 'rack 2 host'", MigrateCommand("web server", "rack 2 host")),
    ("\u201cweb server\u201d to \u2018rack 2\u2019", MigrateCommand("web server", "rack 2")),
    ("vm01\u00a0to\u00a0host3", MigrateCommand("vm01", "host3")),
    ("  vm01   to\nhost3  ", MigrateCommand("vm01", "host3")),
    (
        "vm01 to host3 disk:\"data disk\"='fast sr'",
        MigrateCommand("vm01", "host3", disks=(("data disk", "fast sr"),)),
    ),
    (
        'vm01 to host3 at="2026-11-26 02:00"',
        MigrateCommand("vm01", "host3", at="2026-11-26 02:00"),
    ),
    (
        "8d3e1f64-2b1c-4c7e-9a0b-3f5e6d7c8b9a to 1b2c3d4e-0000-4000-8000-000000000003",
        MigrateCommand(
            "8d3e1f64-2b1c-4c7e-9a0b-3f5e6d7c8b9a", "1b2c3d4e-0000-4000-8000-000000000003"
        ),
    ),
    ("help to host3", MigrateCommand("help", "host3")),
    ("list to status", MigrateCommand("list", "status")),
    ("vm#1 to host3", MigrateCommand("vm#1", "host3")),
    ('"db,primary" to host3', MigrateCommand("db,primary", "host3")),
    ("db\\,primary to host3", MigrateCommand("db,primary", "host3")),
    ("vm01,vm02 to host3", BatchCommand(vms=("vm01", "vm02"), to=("host3",))),
    (
        "vm01, vm02 ,'web server' to host2, host3 sr=nfs1 mode=offline dry-run",
        BatchCommand(
            vms=("vm01", "vm02", "web server"),
            to=("host2", "host3"),
            sr="nfs1",
            mode="offline",
            dry_run=True,
        ),
    ),
    ('vm01,"db,primary" to host3', BatchCommand(vms=("vm01", "db,primary"), to=("host3",))),
    ("vm01,vm02", BatchCommand(vms=("vm01", "vm02"))),
    ("tag:web to host3", BatchCommand(tag="web", to=("host3",))),
    ("TAG:Web at=02:00", BatchCommand(tag="Web", at="02:00")),
    ("tag:'web tier' to host3", BatchCommand(tag="web tier", to=("host3",))),
    ("evacuate host1", BatchCommand(evacuate="host1")),
    (
        "Evacuate host1 to host2,host3 mode=offline shutdown=hard at=02:00",
        BatchCommand(
            evacuate="host1", to=("host2", "host3"), mode="offline", shutdown="hard", at="02:00"
        ),
    ),
    ("evacuate to host3", MigrateCommand("evacuate", "host3")),
    ("enable host1", Enable("host1")),
    ("enable 'rack 2'", Enable("rack 2")),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_good_input_parses_to_exact_command(text: str, expected: object) -> None:
    """Each accepted form yields exactly the command it spells, names keeping their case."""
    assert parse(text) == expected


BAD = [
    ("vm01", "expected '<vm> to <host>'"),
    ("to host3", "expected '<vm> to <host>'"),
    ("vm01 host3", "expected '<vm> to <host>'"),
    ("vm01 to", "expected a host after 'to'"),
    ("web server to host3", "expected one VM name before 'to', got 'web server'"),
    ("mode=live vm01 to host3", "option 'mode=live' must come after '<vm> to <host>'"),
    ("sr=nfs1 to host3", "option 'sr=nfs1' must come after '<vm> to <host>'"),
    ("vm01 to sr=nfs1", "expected a host after 'to', not the option 'sr=nfs1'"),
    ("vm01 to host 3", "unexpected '3' after the host"),
    ("vm01 to host3 foo=bar", "unknown option 'foo=bar'"),
    ("vm01 to host3 mode=fast", "mode must be live or offline, not 'fast'"),
    ("vm01 to host3 shutdown=soft", "shutdown must be clean or hard, not 'soft'"),
    ("vm01 to host3 mode=live shutdown=hard", "shutdown=hard applies to offline migrations"),
    ("vm01 to host3 sr=a sr=b", "sr= given twice"),
    ("vm01 to host3 mode=live MODE=offline", "mode= given twice"),
    ("vm01 to host3 at=01:00 at=02:00", "at= given twice"),
    ("vm01 to host3 dry-run --dry-run", "dry-run given twice"),
    ("vm01 to host3 disk:1=a DISK:1=b", "'disk:1=' given twice"),
    ("vm01 to host3 sr=", "sr= needs a value"),
    ("vm01 to host3 sr=' '", "sr= needs a value"),
    ("vm01 to host3 at=", "at= needs a value"),
    ("vm01 to host3 disk:1=", "'disk:1=' needs an SR"),
    ("vm01 to host3 disk:=nfs1", "disk: needs a disk number, device or VDI"),
    ("vm01 to host3 disk=nfs1", "disk needs a selector"),
    ("vm01 to host3 sr", "'sr' needs '=<value>'"),
    ("vm01 to host3 offline", "did you mean mode=offline?"),
    ("vm01 to host3 dryrun", "did you mean dry-run?"),
    ("vm01 to host3 dry-run=yes", "dry-run takes no value"),
    ('"web server to host3', "a quote is not closed"),
    ("vm01 to \u2018host3", "a quote is not closed"),
    ("vm01 to host3\\", "the command ends with a lone backslash"),
    ('"vm\x0001" to host3', "'vm\\x0001' contains a control character"),
    ("'vm\n\n01' to host3", "'vm\\n\\n01' contains a control character"),
    ('"" to host3', "the VM name is empty"),
    ("vm01 to ' '", "the host name is empty"),
    ("list all", "list takes no arguments"),
    ("status 1 2", "status takes one request id or VM name"),
    ("status #abc", "'#abc' is not a request id"),
    ("cancel", "cancel needs a request id"),
    ("cancel vm01", "cancel needs a request id like #42, not 'vm01'"),
    ("cancel #0", "cancel needs a request id like #42, not '#0'"),
    ("cancel 1 2", "cancel takes one request id"),
    ("x" * 2001, "command is too long"),
    ("vm01 to host2,host3", "one VM goes to one host, not 'host2,host3'"),
    ("vm01,,vm02 to host3", "an empty VM name in 'vm01,,vm02'"),
    ("vm01,vm01 to host3", "a VM is named twice in 'vm01,vm01'"),
    ("vm01,vm02 to host3,host3", "a host is named twice"),
    ("vm01,vm02 to", "expected a host (or hosts, comma-separated) after 'to'"),
    ("vm01,vm02 to sr=nfs1", "expected a host (or hosts, comma-separated) after 'to'"),
    ("vm01,vm02 to host3 disk:1=nfs1", "give sr= for several VMs"),
    ("vm01,vm02 to host3 sr=a,b", "commas separate the VMs of a list"),
    ("evacuate host1,host2", "commas separate the VMs of a list"),
    ("evacuate", "evacuate needs a host"),
    ("evacuate sr=nfs1", "evacuate needs a host"),
    ("evacuate host1 host2", "unexpected 'host2'"),
    ("tag:", "tag: needs a tag"),
    ("tag:web,db to host3", "one tag at a time"),
    ("status vm01,vm02", "commas separate the VMs of a list"),
    ("enable", "enable takes one host name"),
    ("enable host1 host2", "enable takes one host name"),
]


@pytest.mark.parametrize(("text", "reason"), BAD)
def test_bad_input_is_a_usage_error_naming_the_fault(text: str, reason: str) -> None:
    """Each refusal is a BadCommand whose first sentence says what is wrong."""
    result = parse(text)
    assert isinstance(result, BadCommand)
    assert reason in result.reason


def test_usage_error_carries_reason_usage_and_example() -> None:
    """A refusal reads: the reason, a blank line, the grammar, then one example."""
    error = usage_error("sr= given twice")
    assert error.message.startswith("sr= given twice\n\n" + USAGE)
    assert "\n\nExample: /migrate " in error.message
    assert error.reason == "sr= given twice"


def test_usage_lists_every_option() -> None:
    """The usage shows each option the parser accepts, so the error teaches the full grammar."""
    for piece in ("sr=", "disk:", "mode=live|offline", "shutdown=clean|hard", "at=", "dry-run"):
        assert piece in USAGE


def test_long_value_is_cut_short_in_the_message() -> None:
    """An echoed value is truncated, so a pasted paragraph does not flood the reply."""
    result = parse("vm01 to host3 mode=" + "f" * 500)
    assert isinstance(result, BadCommand)
    assert len(result.reason) < 120


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("#42", 42),
        (" #7 ", 7),
        ("007", 7),
        ("0", None),
        ("#", None),
        ("##1", None),
        ("4 2", None),
        ("-1", None),
        ("4.2", None),
        ("١٢", None),  # Arabic-Indic digits: str.isdigit() says yes, ids say no
        ("1" * 19, None),
        ("vm01", None),
    ],
)
def test_parse_request_id(text: str, expected: int | None) -> None:
    """Ids are positive ASCII numbers with an optional '#', as the request message shows them."""
    assert parse_request_id(text) == expected


@given(st.text())
def test_parse_never_raises_on_any_text(text: str) -> None:
    """Whatever is typed, parse returns a command or a one-line-reason BadCommand, never raises."""
    result = parse(text)
    assert not isinstance(result, BadCommand) or "\n" not in result.reason
    assert isinstance(
        result,
        MigrateCommand
        | BatchCommand
        | Enable
        | OpenModal
        | Help
        | ListRequests
        | Status
        | Cancel
        | BadCommand,
    )


PIECES = [
    "to",
    "TO",
    "vm01",
    "host3",
    '"web server"',
    "'rack 2'",
    "\u201csmart\u201d",
    "sr=nfs1",
    "sr=",
    "SR=x",
    "disk:1=ssd",
    "disk:xvda=nfs1",
    "disk:=x",
    "disk:1",
    "mode=live",
    "mode=OFFLINE",
    "mode=fast",
    "shutdown=hard",
    "shutdown=",
    "at=02:00",
    "at=",
    "dry-run",
    "--dry-run",
    "help",
    "list",
    "status",
    "cancel",
    "#42",
    "42",
    "foo=bar",
    "=",
    '"',
    "'",
    "\u2018",
    "\\",
    "#",
    "\x00",
    ",",
    " , ",
    "vm01,vm02",
    "host2,host3",
    "evacuate",
    "tag:web",
    "tag:",
    "enable",
]


@given(st.lists(st.sampled_from(PIECES), max_size=12), st.sampled_from([" ", "", "\n", "\t"]))
def test_parse_never_raises_on_grammar_pieces(pieces: list[str], sep: str) -> None:
    """Shuffled grammar pieces, glued or spaced, still give a command or a BadCommand."""
    result = parse(sep.join(pieces))
    if isinstance(result, BadCommand):
        assert "\n" not in result.reason
        assert result.message.startswith(result.reason + "\n\n" + USAGE)
    else:
        assert isinstance(
            result,
            MigrateCommand
            | BatchCommand
            | Enable
            | OpenModal
            | Help
            | ListRequests
            | Status
            | Cancel,
        )


# parse() turns smart quotes into plain ones, so no parsed command holds one; `=` would
# make a name read as an option; U+E000 is the parser's own mark for a comma outside quotes.
SMART_QUOTES = "\u201c\u201d\u2018\u2019\ue000"
_NAME_CHARS = st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="=" + SMART_QUOTES)
_VALUE_CHARS = st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=SMART_QUOTES)
names = st.text(_NAME_CHARS, min_size=1, max_size=20).filter(
    lambda s: bool(s.strip()) and s.lower() not in ("dry-run", "--dry-run")
)
values = st.text(_VALUE_CHARS, min_size=1, max_size=20).filter(lambda s: bool(s.strip()))


@st.composite
def migrate_commands(draw: st.DrawFn) -> MigrateCommand:
    mode = draw(st.sampled_from([None, "live", "offline"]))
    return MigrateCommand(
        vm=draw(names),
        host=draw(names),
        sr=draw(st.none() | values),
        disks=tuple(draw(st.lists(st.tuples(names, values), max_size=3, unique_by=lambda d: d[0]))),
        mode=mode,
        shutdown="clean" if mode == "live" else draw(st.sampled_from(["clean", "hard"])),
        at=draw(st.none() | values),
        dry_run=draw(st.booleans()),
    )


@st.composite
def batch_commands(draw: st.DrawFn) -> BatchCommand:
    mode = draw(st.sampled_from([None, "live", "offline"]))
    subject = draw(st.sampled_from(["vms", "tag", "evacuate"]))
    host = names.filter(lambda s: s.lower() != "to")  # `evacuate to x` moves a VM named evacuate
    return BatchCommand(
        vms=tuple(draw(st.lists(names, min_size=2, max_size=4, unique=True)))
        if subject == "vms"
        else (),
        tag=draw(names) if subject == "tag" else None,
        evacuate=draw(host) if subject == "evacuate" else None,
        to=tuple(draw(st.lists(names, max_size=3, unique=True))),
        sr=draw(st.none() | values),
        mode=mode,
        shutdown="clean" if mode == "live" else draw(st.sampled_from(["clean", "hard"])),
        at=draw(st.none() | values),
        dry_run=draw(st.booleans()),
    )


@given(migrate_commands() | batch_commands())
def test_render_parses_back_to_the_same_command(cmd: MigrateCommand | BatchCommand) -> None:
    """render() quotes what needs quoting, so its text parses back to the very same command."""
    assert parse(render(cmd)) == cmd


def test_render_quotes_only_names_that_need_it() -> None:
    """Plain names stay bare and names with spaces are quoted, so echoes read like typed text."""
    cmd = MigrateCommand("web server", "host3", sr="nfs1", disks=(("1", "fast sr"),))
    assert render(cmd) == "'web server' to host3 sr=nfs1 disk:1='fast sr'"
