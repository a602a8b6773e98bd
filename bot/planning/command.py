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
/migrate <vm>,<vm>,... [to <host>[,<host>...]] [sr=<sr>] [mode=…] [at=…] [dry-run]
/migrate tag:<tag> [to <host>[,<host>...]] [...]      every VM with that tag
/migrate evacuate <host> [to <host>,<host>] [...]    every VM on that host, one approval
/migrate enable <host>     /migrate status [<id>|<vm>]    /migrate list
/migrate cancel <id>       /migrate help

Names are name-labels or UUIDs; quote names with spaces. sr= is the primary storage for
every disk; disk: overrides it for one disk. at= is ISO 8601 (2026-11-26T02:00) or HH:MM.
With several pools, vm01@pool-b or pool=pool-b says which pool a name is in."""

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
    pool: str | None = None  # `pool=`: the pool the names are in (several pools)


@dataclass(frozen=True)
class BatchCommand:
    """Several VMs under one approval: a list, a tag's VMs, or everything on a host.

    Without `to` the bot places each VM itself (any host but the one it leaves)."""

    vms: tuple[str, ...] = ()  # `vm01,vm02,...`
    tag: str | None = None  # `tag:<tag>`
    evacuate: str | None = None  # `evacuate <host>`
    to: tuple[str, ...] = ()  # the hosts the VMs may go to
    sr: str | None = None
    mode: Mode | None = None
    shutdown: ShutdownKind = "clean"
    at: str | None = None
    dry_run: bool = False
    pool: str | None = None


@dataclass(frozen=True)
class Enable:
    """`enable <host>`: re-enable a host an evacuation disabled."""

    host: str


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


Command = MigrateCommand | BatchCommand | Enable | OpenModal | Help | ListRequests | Status | Cancel


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
_KEYS = ("sr", "mode", "shutdown", "at", "pool")
_HINTS = {
    "live": "mode=live",
    "offline": "mode=offline",
    "hard": "shutdown=hard",
    "dryrun": "dry-run",
    "--dryrun": "dry-run",
}
_MODES: dict[str, Mode] = {"live": "live", "offline": "offline"}
_SHUTDOWNS: dict[str, ShutdownKind] = {"clean": "clean", "hard": "hard"}
_OPTIONS = "sr=, disk:<n|device|vdi>=, mode=, shutdown=, at=, pool=, dry-run"


LIST = "\ue000"  # stands for a comma outside quotes: it separates the names of a list


def _mark_lists(text: str) -> str:
    """Turn each comma outside quotes (and the spaces around it) into LIST, so
    `vm01, vm02` is one list and a quoted `"db,primary"` stays one name."""
    out: list[str] = []
    quote, i = "", 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote == '"' and i + 1 < len(text):
                out += text[i : i + 2]
                i += 2
                continue
            quote = "" if char == quote else quote
        elif char == "\\" and i + 1 < len(text):
            out += text[i : i + 2]
            i += 2
            continue
        elif char in "'\"":
            quote = char
        elif char == ",":
            while out and out[-1] in _WHITESPACE:
                out.pop()
            out.append(LIST)
            i += 1
            while i < len(text) and text[i] in _WHITESPACE:
                i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[str] | BadCommand:
    lexer = shlex.shlex(_mark_lists(text.translate(_SMART_QUOTES)), posix=True)
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
    # Lists stand first (the VMs) or after `to` (the hosts), nowhere else.
    for n, token in enumerate(tokens):
        if LIST in token and n != 0 and tokens[n - 1].lower() != "to":
            return usage_error(
                f"{quoted(_plain(token))}: commas separate the VMs of a list or the hosts "
                "after 'to'; quote a name that has a comma"
            )
    return tokens


def _plain(token: str) -> str:
    return token.replace(LIST, ",")


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
    first = tokens[0]
    verb, args = first.lower(), tokens[1:]
    if verb.startswith("tag:"):  # a VM named `tag:…` is given by its UUID
        return _tagged(first[len("tag:") :], args)
    # `to` in second place makes it a migration even when the VM is called `list` or `help`.
    if len(tokens) > 1 and tokens[1].lower() == "to" and LIST not in first:
        return _migrate(tokens)
    if LIST in first:
        return _batch(args, vms=first)
    if verb == "evacuate":
        return _batch(args[1:], evacuate=args[0] if args else "")
    if verb == "enable":
        return Enable(args[0]) if len(args) == 1 else usage_error("enable takes one host name")
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


def _names(token: str, what: str) -> tuple[str, ...] | BadCommand:
    """The names of a list (`vm01,vm02`), each once."""
    names = tuple(token.split(LIST))
    if not all(n.strip() for n in names):
        return usage_error(f"an empty {what} name in {quoted(_plain(token))}")
    if len(set(names)) != len(names):
        return usage_error(f"a {what} is named twice in {quoted(_plain(token))}")
    return names


def _tagged(tag: str, rest: list[str]) -> BatchCommand | BadCommand:
    if LIST in tag:
        return usage_error("one tag at a time, like tag:web")
    if not tag.strip():
        return usage_error("tag: needs a tag, like tag:web")
    return _batch(rest, tag=tag)


def _batch(
    rest: list[str], *, vms: str = "", tag: str | None = None, evacuate: str | None = None
) -> BatchCommand | BadCommand:
    """`<subject> [to <host>,<host>] [options]` for a list, a tag or an evacuation."""
    listed: tuple[str, ...] = ()
    if vms:
        names = _names(vms, "VM")
        if isinstance(names, BadCommand):
            return names
        listed = names
    if evacuate is not None and (not evacuate.strip() or _is_option(evacuate)):
        return usage_error("evacuate needs a host, like evacuate host1")
    to: tuple[str, ...] = ()
    if rest and rest[0].lower() == "to":
        if len(rest) < 2 or _is_option(rest[1]):
            return usage_error("expected a host (or hosts, comma-separated) after 'to'")
        hosts = _names(rest[1], "host")
        if isinstance(hosts, BadCommand):
            return hosts
        to, rest = hosts, rest[2:]
    options = _options(rest)
    if isinstance(options, BadCommand):
        return options
    if options.disks:
        return usage_error("disk:<n>= names one VM's disk: give sr= for several VMs")
    return BatchCommand(
        vms=listed,
        tag=tag,
        evacuate=evacuate,
        to=to,
        sr=options.sr,
        mode=options.mode,
        shutdown=options.shutdown,
        at=options.at,
        dry_run=options.dry_run,
        pool=options.pool,
    )


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
    if LIST in host:
        return usage_error(
            f"one VM goes to one host, not {quoted(_plain(host))}: hosts to choose from are "
            "for several VMs (vm01,vm02 to host2,host3)"
        )

    options = _options(tokens[3:])
    if isinstance(options, BadCommand):
        return options
    return MigrateCommand(
        vm=vm,
        host=host,
        sr=options.sr,
        disks=options.disks,
        mode=options.mode,
        shutdown=options.shutdown,
        at=options.at,
        dry_run=options.dry_run,
        pool=options.pool,
    )


@dataclass(frozen=True)
class _Options:
    sr: str | None
    disks: tuple[tuple[str, str], ...]
    mode: Mode | None
    shutdown: ShutdownKind
    at: str | None
    dry_run: bool
    pool: str | None


def _options(tokens: list[str]) -> _Options | BadCommand:
    """The options after the subject: sr=, disk:<n>=, mode=, shutdown=, at=, dry-run."""
    values: dict[str, str] = {}
    disks: list[tuple[str, str]] = []
    dry_run = False
    for token in tokens:
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
    return _Options(
        sr=values.get("sr"),
        disks=tuple(disks),
        mode=mode,
        shutdown=shutdown,
        at=values.get("at"),
        dry_run=dry_run,
        pool=values.get("pool"),
    )


def _stray(token: str) -> BadCommand:
    """A word after the host that is not an option: a hint, or a split name."""
    low = token.lower()
    if low in _HINTS:
        return usage_error(f"unexpected {quoted(token)}: did you mean {_HINTS[low]}?")
    if low in _KEYS or low.startswith("disk:"):
        return usage_error(f"{quoted(token)} needs '=<value>'")
    return usage_error(f"unexpected {quoted(token)} after the host: quote names with spaces")


_PLAIN = re.compile(r"[^\s'\"\\,]+")


def _quote(name: str) -> str:
    """Leave plain names bare; quote the rest so shlex reads them back whole (as
    `shlex.quote` would, but always: it leaves a comma bare, which separates lists here)."""
    return name if _PLAIN.fullmatch(name) else "'" + name.replace("'", "'\"'\"'") + "'"


def render(cmd: MigrateCommand | BatchCommand) -> str:
    """The text that parses back to `cmd`: for echoes, audit lines and "run again" hints.

    Exact for every command `parse` returns (those never hold smart quotes: parse turned
    them into plain ones)."""
    if isinstance(cmd, MigrateCommand):
        words = [_quote(cmd.vm), "to", _quote(cmd.host)]
    elif cmd.evacuate is not None:
        words = ["evacuate", _quote(cmd.evacuate)]
    elif cmd.tag is not None:
        words = [f"tag:{_quote(cmd.tag)}"]
    else:
        words = [_listing(cmd.vms)]
    if isinstance(cmd, BatchCommand) and cmd.to:
        words += ["to", _listing(cmd.to)]
    if cmd.sr is not None:
        words.append(f"sr={_quote(cmd.sr)}")
    if isinstance(cmd, MigrateCommand):
        words += [f"disk:{_quote(sel)}={_quote(sr)}" for sel, sr in cmd.disks]
    if cmd.mode is not None:
        words.append(f"mode={cmd.mode}")
    if cmd.shutdown != "clean":
        words.append(f"shutdown={cmd.shutdown}")
    if cmd.at is not None:
        words.append(f"at={_quote(cmd.at)}")
    if cmd.pool is not None:
        words.append(f"pool={_quote(cmd.pool)}")
    if cmd.dry_run:
        words.append("dry-run")
    return " ".join(words)


def _listing(names: tuple[str, ...]) -> str:
    return ",".join(_quote(name) for name in names)
