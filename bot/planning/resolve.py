"""Names people type -> the objects they mean, or an error that helps them retype.

Pure: the I/O layer hands in the candidates (from a by-name lookup, or all records after a
miss), so "did you mean", the modal's search and "which one?" are decided and worded in
one tested place.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from bot.errors import UserError
from bot.models import DiskFacts, SRFacts, sr_label

MAX_SUGGESTIONS = 3
_CUTOFF = 0.6  # difflib's default: "vm0l" finds "vm01", "web" does not find "db"


class Named(Protocol):
    """Anything with a ref, a UUID and a name-label (VM, host, SR facts)."""

    @property
    def ref(self) -> str: ...

    @property
    def uuid(self) -> str: ...

    @property
    def name(self) -> str: ...


T = TypeVar("T")
N = TypeVar("N", bound=Named)


class ResolveError(UserError):
    """A name did not pick exactly one object; `str()` is the message for the user."""


class NotFound(ResolveError):
    """Nothing matched; `suggestions` are what the user probably meant (maybe none)."""

    def __init__(self, kind: str, text: str, suggestions: Sequence[str] = ()) -> None:
        self.kind = kind
        self.text = text
        self.suggestions = tuple(suggestions)
        message = f"no {kind} '{text}'"
        if self.suggestions:
            message += f"; did you mean {join_or(self.suggestions)}?"
        super().__init__(message)


class Ambiguous(ResolveError):
    """Several objects share the name; `choices` are (UUID, description) pairs to pick from."""

    def __init__(self, kind: str, text: str, choices: Sequence[tuple[str, str]]) -> None:
        self.kind = kind
        self.text = text
        self.choices = tuple(choices)
        listed = "; ".join(f"{uuid} ({desc})" if desc else uuid for uuid, desc in self.choices)
        super().__init__(
            f"{len(self.choices)} {kind}s are named '{text}'; give the UUID of the one you mean: "
            f"{listed}"
        )


def join_or(items: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b or c': how a person lists alternatives."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


Rank = tuple[int, float, str]
# How a name answers what was typed, best first: people remember how a name starts, or a
# piece of it (`mail` for mail01.example.com), before they mistype it.
PREFIX, SUBSTRING, CLOSE = 0, 1, 2


def ranker(text: str) -> Callable[[str], Rank | None]:
    """How well each name answers `text`, ignoring case, as a sort key (lower is better):
    a name that starts with it, then one that contains it, then one close to it (difflib's
    similarity, best first); ties alphabetically. None: not close enough to offer."""
    needle = text.lower()
    matcher = difflib.SequenceMatcher(b=needle)  # analysed once for every name

    def rank(name: str) -> Rank | None:
        hay = name.lower()
        if hay.startswith(needle):
            return (PREFIX, 0.0, hay)
        if needle in hay:
            return (SUBSTRING, 0.0, hay)
        matcher.set_seq1(hay)
        if matcher.real_quick_ratio() < _CUTOFF or matcher.quick_ratio() < _CUTOFF:
            return None
        ratio = matcher.ratio()
        return (CLOSE, -ratio, hay) if ratio >= _CUTOFF else None

    return rank


def ranked(text: str, items: Iterable[T], names: Callable[[T], Iterable[str]]) -> list[T]:
    """The `items` some name of which answers `text`, best first (by their best name; equal
    ones keep their order): the one ranking of "did you mean" and the modal's searches."""
    rank = ranker(text)
    scored: list[tuple[Rank, int, T]] = []
    for position, item in enumerate(items):
        ranks = [r for r in map(rank, names(item)) if r is not None]
        if ranks:
            scored.append((min(ranks), position, item))
    scored.sort(key=lambda entry: entry[:2])
    return [item for _rank, _position, item in scored]


def did_you_mean(text: str, names: Sequence[str], limit: int = MAX_SUGGESTIONS) -> list[str]:
    """The names `text` most likely means, best first (`ranker`); names that differ only in
    case are offered once, so 'VM01' suggests 'vm01' and 'mail' mail01.example.com.
    Nothing typed, nothing to suggest."""
    if not text.strip():
        return []
    by_lower: dict[str, str] = {}
    for name in names:
        if name:
            by_lower.setdefault(name.lower(), name)
    return ranked(text, by_lower.values(), lambda name: (name,))[:limit]


def resolve(
    kind: str,
    text: str,
    candidates: Sequence[N],
    describe: Callable[[N], str] | None = None,
) -> N:
    """Pick the candidate `text` names: a UUID (any case) first, then an exact name-label.

    `describe` words each candidate when a name is ambiguous (for VMs: the host it runs on).
    """
    needle = text.strip()
    return _pick(
        kind,
        needle,
        tiers=(
            [c for c in candidates if needle and c.uuid.lower() == needle.lower()],
            [c for c in candidates if needle and c.name == needle],
        ),
        choice=lambda c: (c.uuid, describe(c) if describe else ""),
        suggestions=lambda: did_you_mean(needle, [c.name for c in candidates]),
    )


def disk_label(disk: DiskFacts) -> str:
    """A disk as the request message shows it and `disk:<n>=` accepts: 0 (xvda, 'vm01 root')."""
    inner = f"{disk.device}, '{disk.name}'" if disk.device else f"'{disk.name}'"
    return f"{disk.userdevice} ({inner})"


def resolve_disk(selector: str, disks: Sequence[DiskFacts]) -> DiskFacts:
    """The disk `disk:<selector>=` means: userdevice, device name, VDI UUID or VDI name-label.

    Checked in that order, so "1" is always the disk at position 1 even if a VDI is called "1".
    """
    needle = selector.strip()
    folded = needle.lower()
    return _pick(
        "disk",
        needle,
        tiers=(
            [d for d in disks if needle and d.userdevice == needle],
            [d for d in disks if needle and d.device.lower() == folded],
            [d for d in disks if needle and d.vdi_uuid.lower() == folded],
            [d for d in disks if needle and d.name == needle],
        ),
        choice=lambda d: (d.vdi_uuid, disk_label(d)),
        suggestions=lambda: [disk_label(d) for d in sorted(disks, key=_userdevice_order)],
    )


def resolve_sr(
    text: str, srs: Sequence[SRFacts], hosts: Mapping[str, str], dest_ref: str
) -> SRFacts:
    """The SR `sr=` means: a UUID, a name, `<name> on <host>`, or `local` (the destination's
    own SR). A name several SRs share is never picked silently: the error lists them as
    `sr="<name> on <host>"` choices."""
    needle = text.strip()
    disks = [sr for sr in srs if sr.takes_disks]
    if needle.lower() == "local":
        own = [sr for sr in disks if not sr.shared and sr.hosts == {dest_ref}]
        if not own:
            reached = join_or([sr_label(sr, hosts) for sr in disks if dest_ref in sr.hosts])
            raise ResolveError(
                f"{hosts.get(dest_ref, dest_ref)} has no local SR for VM disks; it reaches "
                f"{reached or 'no SR'}"
            )
        return _pick(
            "SR",
            needle,
            tiers=(own,),
            choice=lambda sr: (sr.uuid, sr_label(sr, hosts)),
            suggestions=lambda: (),
        )
    return _pick(
        "SR",
        needle,
        tiers=(
            [sr for sr in srs if needle and sr.uuid.lower() == needle.lower()],
            [sr for sr in srs if needle and sr_label(sr, hosts) == needle and sr.name != needle],
            [sr for sr in srs if needle and sr.name == needle],
        ),
        choice=lambda sr: (sr.uuid, f'sr="{sr_label(sr, hosts)}"'),
        suggestions=lambda: did_you_mean(needle, sorted({sr_label(sr, hosts) for sr in srs})),
    )


def _userdevice_order(disk: DiskFacts) -> tuple[int, str]:
    return (int(disk.userdevice), "") if disk.userdevice.isdigit() else (1 << 30, disk.userdevice)


def _pick(
    kind: str,
    text: str,
    *,
    tiers: Sequence[Sequence[T]],
    choice: Callable[[T], tuple[str, str]],
    suggestions: Callable[[], Sequence[str]],
) -> T:
    """The first non-empty tier decides: one match wins, several are ambiguous."""
    for matches in tiers:
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise Ambiguous(kind, text, [choice(m) for m in matches])
    raise NotFound(kind, text, suggestions() if text else ())
