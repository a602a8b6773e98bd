"""The simulator's object database: records by class and ref, with xapi's event generations.

Every write bumps one generation counter, like xapi's database: `event.from` reports each
object created, modified or deleted after a token's generation, coalesced to one event per
object. Callers hold `Database.lock` (an RLock shared with the rest of the simulator).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from bot.simulator.schema import BY_LOWER, CLASSES, FIELDS
from bot.simulator.wire import XapiError, new_ref, new_uuid


@dataclass
class _Stamp:
    created: int
    modified: int


class Database:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.generation = 0
        self.tables: dict[str, dict[str, dict[str, Any]]] = {cls: {} for cls in CLASSES}
        self._stamps: dict[tuple[str, str], _Stamp] = {}
        self._deleted: list[tuple[int, str, str]] = []  # (generation, class, ref)
        self._by_uuid: dict[tuple[str, str], str] = {}
        # Fields the pool's xapi release lacks (`schema.lacking`): kept inside, so the
        # simulator's rules need no special case, and left out of what clients see.
        self.lacking: dict[str, frozenset[str]] = {}

    def _bump(self) -> int:
        with self.lock:  # reentrant: writers from tests and tools need not hold it
            self.generation += 1
            self.changed.notify_all()
            return self.generation

    def create(self, cls: str, **fields: Any) -> str:
        unknown = set(fields) - set(FIELDS[cls]) - {"uuid"}
        if unknown:
            raise KeyError(f"{cls} has no field {sorted(unknown)}")
        ref = new_ref()
        record = copy.deepcopy(FIELDS[cls])
        record.update(fields)
        record.setdefault("uuid", new_uuid())
        self.tables[cls][ref] = record
        self._by_uuid[(cls, record["uuid"])] = ref
        gen = self._bump()
        self._stamps[(cls, ref)] = _Stamp(gen, gen)
        return ref

    def exists(self, cls: str, ref: object) -> bool:
        return isinstance(ref, str) and ref in self.tables[cls]

    def get(self, cls: str, ref: object) -> dict[str, Any]:
        """The live record (do not mutate it: use `update`); HANDLE_INVALID for a bad ref."""
        if not self.exists(cls, ref):
            raise XapiError("HANDLE_INVALID", cls, ref)
        return self.tables[cls][ref]  # type: ignore[index]

    def update(self, cls: str, ref: str, **changes: Any) -> None:
        record = self.get(cls, ref)
        record.update(changes)
        self._stamps[(cls, ref)].modified = self._bump()

    def touch(self, cls: str, ref: str) -> None:
        """Record a modification made in place (a map or set changed)."""
        self.get(cls, ref)
        self._stamps[(cls, ref)].modified = self._bump()

    def delete(self, cls: str, ref: str) -> None:
        record = self.tables[cls].pop(ref, None)
        if record is None:
            raise XapiError("HANDLE_INVALID", cls, ref)
        self._by_uuid.pop((cls, record["uuid"]), None)
        self._stamps.pop((cls, ref), None)
        self._deleted.append((self._bump(), cls, ref))

    def by_uuid(self, cls: str, uuid: object) -> str:
        ref = self._by_uuid.get((cls, uuid)) if isinstance(uuid, str) else None
        if ref is None:
            raise XapiError("UUID_INVALID", cls, uuid)
        return ref

    def find(self, cls: str, **match: Any) -> list[str]:
        return [
            ref
            for ref, record in self.tables[cls].items()
            if all(record.get(k) == v for k, v in match.items())
        ]

    def snapshot(self, cls: str, ref: str) -> dict[str, Any]:
        """A copy of a record as get_record returns it (without the fields xapi lacks)."""
        record = copy.deepcopy(self.get(cls, ref))
        for field in self.lacking.get(cls, ()):
            del record[field]
        return record

    def events_since(self, since: int, classes: set[str]) -> list[dict[str, Any]]:
        """Coalesced events after generation `since` for the lowercase class names given."""

        def wanted(cls: str, ref: str) -> bool:
            low = cls.lower()
            return "*" in classes or low in classes or f"{low}/{ref}" in classes

        events: list[tuple[int, dict[str, Any]]] = []
        for (cls, ref), stamp in self._stamps.items():
            if stamp.modified > since and wanted(cls, ref):
                op = "add" if stamp.created > since else "mod"
                events.append((stamp.modified, self._event(cls, ref, op, stamp.modified)))
        for gen, cls, ref in self._deleted:
            if gen > since and wanted(cls, ref):
                events.append(
                    (
                        gen,
                        {
                            "id": str(gen),
                            "timestamp": "0.0",
                            "class": cls.lower(),
                            "operation": "del",
                            "ref": ref,
                        },
                    )
                )
        events.sort(key=lambda pair: pair[0])
        return [event for _, event in events]

    def _event(self, cls: str, ref: str, op: str, gen: int) -> dict[str, Any]:
        return {
            "id": str(gen),
            "timestamp": "0.0",
            "class": cls.lower(),
            "operation": op,
            "ref": ref,
            "snapshot": self.snapshot(cls, ref),
        }

    def ref_counts(self) -> dict[str, int]:
        return {cls.lower(): len(rows) for cls, rows in self.tables.items()}


def parse_classes(classes: object) -> set[str]:
    """event.from's subscription list; EVENT_SUBSCRIPTION_PARSE_FAILURE for unknown names."""
    if not isinstance(classes, list):
        raise XapiError("EVENT_SUBSCRIPTION_PARSE_FAILURE", classes)
    parsed = set()
    for item in classes:
        base, slash, ref = str(item).partition("/")
        if item != "*" and base.lower() not in BY_LOWER:
            raise XapiError("EVENT_SUBSCRIPTION_PARSE_FAILURE", item)
        parsed.add(base.lower() + slash + ref)
    return parsed
