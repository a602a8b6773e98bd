"""The `/migrate` grammar: text -> a typed command, or a usage error.

Pure: no I/O, no names resolved here (the handler looks VMs, hosts and SRs up and turns
`at=` into a time with `bot.planning.when`). Every failure is a `BadCommand` value, never an
exception, so a typo can never become a stack trace in Slack. The same parser serves the
CLI (`migrate-bot check "vm01 to host3 sr=nfs1"`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot.models import Mode, ShutdownKind

MAX_LENGTH = 2000

USAGE = """\
/migrate                                    opens the Migrate VM modal
/migrate <vm> to <host> [sr=<sr>] [disk:<n|device|vdi>=<sr> ...] [mode=live|offline]
         [shutdown=clean|hard] [at=<time>] [dry-run]
/migrate status [<id>|<vm>]    /migrate list    /migrate cancel <id>    /migrate help

Names are name-labels or UUIDs; quote names with spaces. sr= is the primary storage for
every disk; disk: overrides it for one disk. at= is ISO 8601 (2026-11-26T02:00) or HH:MM."""

EXAMPLE = '/migrate "web server" to host3 sr=nfs1 mode=offline at=02:00'


@dataclass(frozen=True)
class MigrateCommand:
    """`<vm> to <host> ...`: names as typed; the handler resolves them against the pool."""

    vm: str
    host: str
    sr: str | None = None
    disks: tuple[tuple[str, str], ...] = ()  # (selector, sr) in the order typed
    mode: Mode | None = None  # None: live when running, offline when halted
    shutdown: ShutdownKind = "clean"
    at: str | None = None  # raw text; bot.when.resolve_at makes it a time
    dry_run: bool = False


@dataclass(frozen=True)
class OpenModal:
    """Bare `/migrate`."""


@dataclass(frozen=True)
class Help:
    """`help`."""


@dataclass(frozen=True)
class ListRequests:
    """`list`, or `status` with no argument."""


@dataclass(frozen=True)
class Status:
    """`status <id|vm>`: a request id is normalised to `#42`; anything else is a VM name."""

    target: str


@dataclass(frozen=True)
class Cancel:
    """`cancel <id>`."""

    request_id: int


@dataclass(frozen=True)
class BadCommand:
    """What was wrong, a blank line, the usage and an example: shown ephemerally as is."""

    message: str

    @property
    def reason(self) -> str:
        """The first sentence alone, for places too small for the whole usage."""
        return self.message.split("\n\n", 1)[0]


Command = MigrateCommand | OpenModal | Help | ListRequests | Status | Cancel


def usage_error(reason: str) -> BadCommand:
    """Wrap one sentence with the usage, so every refusal teaches the grammar."""
    return BadCommand(f"{reason}\n\n{USAGE}\n\nExample: {EXAMPLE}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def quoted(value: str, limit: int = 60) -> str:
    """`value` in single quotes for an error message: control characters shown escaped
    (a newline would split the message), and cut short so echoes stay readable."""
    value = _CONTROL.sub(lambda m: ascii(m.group())[1:-1], value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return f"'{value}'"


_ID = re.compile(r"#?([0-9]{1,18})", re.ASCII)


def parse_request_id(text: str) -> int | None:
    """`42` or `#42` -> 42; anything else (0 included: ids start at 1) -> None."""
    match = _ID.fullmatch(text.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if number > 0 else None


# Slack "smartens" quotes as people type; the grammar means the plain ones.
_SMART_QUOTES = str.maketrans("\u201c\u201d\u2018\u2019", "\"\"''")
# Every character str.split() splits on (NBSP pasted from a web page included).
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())

_DRY_RUN = ("dry-run", "--dry-run")
_KEYS = ("sr", "mode", "shutdown", "at")
_HINTS = {
    "live": "mode=live",
    "offline": "mode=offline",
    "hard": "shutdown=hard",
    "dryrun": "dry-run",
    "--dryrun": "dry-run",
}
_MODES: dict[str, Mode] = {"live": "live", "offline": "offline"}
_SHUTDOWNS: dict[str, ShutdownKind] = {"clean": "clean", "hard": "hard"}
_OPTIONS = "sr=, disk:<n|device|vdi>=, mode=, shutdown=, at=, dry-run"


def _tokens(text: str) -> list[str] | BadCommand:
    lexer = shlex.shlex(text.translate(_SMART_QUOTES), posix=True)
    lexer.whitespace = _WHITESPACE
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError as exc:  # shlex's only failure: an open quote or a trailing backslash
        if "quotation" in str(exc):
            return usage_error("a quote is not closed: put names with spaces in quotes")
        return usage_error("the command ends with a lone backslash")
    for token in tokens:
        if _CONTROL.search(token):
            return usage_error(f"{quoted(token)} contains a control character")
    return tokens


def _is_option(token: str) -> bool:
    """Whether `token` reads as an option, so it cannot stand where a name is expected."""
    low = token.lower()
    if low in _DRY_RUN:
        return True
    key, eq, _ = low.partition("=")
    return bool(eq) and (key in _KEYS or key.startswith("disk:"))


def parse(text: str) -> Command | BadCommand:
    """Parse what follows `/migrate`; never raises, whatever the text."""
    if len(text) > MAX_LENGTH:
        return usage_error("command is too long")
    tokens = _tokens(text)
    if isinstance(tokens, BadCommand):
        return tokens
    if not tokens:
        return OpenModal()
    # `to` in second place makes it a migration even when the VM is called `list` or `help`.
    if len(tokens) > 1 and tokens[1].lower() == "to":
        return _migrate(tokens)
    verb, args = tokens[0].lower(), tokens[1:]
    if verb == "help":
        return Help()
    if verb == "list":
        return usage_error("list takes no arguments") if args else ListRequests()
    if verb == "status":
        return _status(args)
    if verb == "cancel":
        return _cancel(args)
    return _misplaced_to(tokens)


def _status(args: list[str]) -> Status | ListRequests | BadCommand:
    if not args:
        return ListRequests()
    if len(args) > 1:
        return usage_error("status takes one request id or VM name: quote names with spaces")
    request_id = parse_request_id(args[0])
    if request_id is not None:
        return Status(f"#{request_id}")
    if args[0].startswith("#"):
        return usage_error(f"{quoted(args[0])} is not a request id: ids are numbers like #42")
    if not args[0].strip():
        return usage_error("status needs a request id or a VM name, not an empty name")
    return Status(args[0])


def _cancel(args: list[str]) -> Cancel | BadCommand:
    if not args:
        return usage_error("cancel needs a request id, like cancel #42")
    if len(args) > 1:
        return usage_error("cancel takes one request id")
    request_id = parse_request_id(args[0])
    if request_id is None:
        return usage_error(f"cancel needs a request id like #42, not {quoted(args[0])}")
    return Cancel(request_id)


def _misplaced_to(tokens: list[str]) -> BadCommand:
    """Explain why the words do not read as `<vm> to <host>`."""
    lowered = [t.lower() for t in tokens]
    if "to" not in lowered or lowered[0] == "to":
        return usage_error("expected '<vm> to <host>'")
    before = tokens[: lowered.index("to")]
    option = next((t for t in before if _is_option(t)), None)
    if option is not None:
        return usage_error(f"option {quoted(option)} must come after '<vm> to <host>'")
    return usage_error(
        f"expected one VM name before 'to', got {quoted(' '.join(before))}: quote names with spaces"
    )


def _migrate(tokens: list[str]) -> MigrateCommand | BadCommand:
    vm = tokens[0]
    if _is_option(vm):
        return usage_error(f"option {quoted(vm)} must come after '<vm> to <host>'")
    if not vm.strip():
        return usage_error("the VM name is empty")
    if len(tokens) < 3:
        return usage_error("expected a host after 'to'")
    host = tokens[2]
    if _is_option(host):
        return usage_error(f"expected a host after 'to', not the option {quoted(host)}")
    if not host.strip():
        return usage_error("the host name is empty")

    values: dict[str, str] = {}
    disks: list[tuple[str, str]] = []
    dry_run = False
    for token in tokens[3:]:
        low = token.lower()
        if low in _DRY_RUN:
            if dry_run:
                return usage_error("dry-run given twice")
            dry_run = True
            continue
        key, eq, value = token.partition("=")
        low_key = key.lower()
        if not eq:
            return _stray(token)
        if low_key.startswith("disk:"):
            selector = key[len("disk:") :]
            if not selector.strip():
                return usage_error("disk: needs a disk number, device or VDI, like disk:1=nfs1")
            if not value.strip():
                return usage_error(f"{quoted(f'disk:{selector}=')} needs an SR")
            if any(selector == seen for seen, _ in disks):
                return usage_error(f"{quoted(f'disk:{selector}=')} given twice")
            disks.append((selector, value))
            continue
        if low_key in _DRY_RUN:
            return usage_error("dry-run takes no value")
        if low_key == "disk":
            return usage_error("disk needs a selector: disk:<n|device|vdi>=<sr>")
        if low_key not in _KEYS:
            return usage_error(f"unknown option {quoted(token)} (options: {_OPTIONS})")
        if low_key in values:
            return usage_error(f"{low_key}= given twice")
        if not value.strip():
            return usage_error(f"{low_key}= needs a value")
        values[low_key] = value

    mode = _MODES.get(values.get("mode", "").lower())
    if "mode" in values and mode is None:
        return usage_error(f"mode must be live or offline, not {quoted(values['mode'])}")
    shutdown = _SHUTDOWNS.get(values.get("shutdown", "clean").lower())
    if shutdown is None:
        return usage_error(f"shutdown must be clean or hard, not {quoted(values['shutdown'])}")
    if mode == "live" and shutdown == "hard":
        return usage_error("shutdown=hard applies to offline migrations, not mode=live")
    return MigrateCommand(
        vm=vm,
        host=host,
        sr=values.get("sr"),
        disks=tuple(disks),
        mode=mode,
        shutdown=shutdown,
        at=values.get("at"),
        dry_run=dry_run,
    )


def _stray(token: str) -> BadCommand:
    """A word after the host that is not an option: a hint, or a split name."""
    low = token.lower()
    if low in _HINTS:
        return usage_error(f"unexpected {quoted(token)}: did you mean {_HINTS[low]}?")
    if low in _KEYS or low.startswith("disk:"):
        return usage_error(f"{quoted(token)} needs '=<value>'")
    return usage_error(f"unexpected {quoted(token)} after the host: quote names with spaces")


_PLAIN = re.compile(r"[^\s'\"\\]+")


def _quote(name: str) -> str:
    """Leave plain names bare; quote the rest so shlex reads them back whole."""
    return name if _PLAIN.fullmatch(name) else shlex.quote(name)


def render(cmd: MigrateCommand) -> str:
    """The text that parses back to `cmd`: for echoes, audit lines and "run again" hints.

    Exact for every command `parse` returns (those never hold smart quotes: parse turned
    them into plain ones)."""
    words = [_quote(cmd.vm), "to", _quote(cmd.host)]
    if cmd.sr is not None:
        words.append(f"sr={_quote(cmd.sr)}")
    words += [f"disk:{_quote(sel)}={_quote(sr)}" for sel, sr in cmd.disks]
    if cmd.mode is not None:
        words.append(f"mode={cmd.mode}")
    if cmd.shutdown != "clean":
        words.append(f"shutdown={cmd.shutdown}")
    if cmd.at is not None:
        words.append(f"at={_quote(cmd.at)}")
    if cmd.dry_run:
        words.append("dry-run")
    return " ".join(words)
