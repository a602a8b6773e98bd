"""The methods xapi generates for every class: getters, setters, map and set edits,
`get_all`, `get_all_records` and `get_all_records_where` (`filters.py`).

`resolve("VM.get_power_state")` builds the method on demand from the schema, including
xapi's alternative wire name `VM_get_power_state` (how `event_from` reaches `event.from`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.simulator.filters import records_where
from bot.simulator.pool import REGISTRY, Method, Simulator
from bot.simulator.rules import refresh_allowed
from bot.simulator.schema import CLASSES, EXPOSED, FIELDS, MAPS, NAMED, SETS, WRITABLE
from bot.simulator.wire import XapiError

_BY_LENGTH = sorted(CLASSES, key=len, reverse=True)


def split_name(name: str) -> tuple[str, str] | None:
    """`Class.method` or `Class_method` -> (class, method); None when no class matches."""
    if "." in name:
        cls, _, verb = name.partition(".")
        return (cls, verb) if cls in FIELDS or cls == "event" else None
    for cls in [*_BY_LENGTH, "event"]:
        if name.startswith(cls + "_"):
            return cls, name[len(cls) + 1 :]
    return None


def _method(func: Callable[..., Any], args: int) -> Method:
    return Method(func, args, args, is_process=False, needs_session=True)


def resolve(sim: Simulator, name: str) -> Method | None:
    parts = split_name(name)
    if parts is None:
        return None
    cls, verb = parts
    if f"{cls}.{verb}" in REGISTRY:
        return REGISTRY[f"{cls}.{verb}"]
    if cls not in FIELDS or (verb.startswith("get_") and verb[4:] in sim.db.lacking.get(cls, ())):
        return None
    return _generic(cls, verb)


def _generic(cls: str, verb: str) -> Method | None:
    fields = FIELDS[cls]
    if verb in ("get_all", "get_all_records", "get_all_records_where") and cls not in EXPOSED:
        return None
    if verb == "get_all":
        return _method(lambda sim, _s: list(sim.db.tables[cls]), 0)
    if verb == "get_all_records":
        return _method(
            lambda sim, _s: {ref: sim.db.snapshot(cls, ref) for ref in sim.db.tables[cls]}, 0
        )
    if verb == "get_all_records_where":
        return _method(lambda sim, _s, expr: records_where(sim, cls, expr), 1)
    if verb == "get_record":
        return _method(lambda sim, _s, ref: sim.db.snapshot(cls, ref), 1)
    if verb == "get_by_uuid":
        return _method(lambda sim, _s, uuid: sim.db.by_uuid(cls, uuid), 1)
    if verb == "get_by_name_label" and cls in NAMED:
        return _method(lambda sim, _s, label: sim.db.find(cls, name_label=label), 1)
    if verb.startswith("get_"):
        field = verb[4:]
        if field in fields or field == "uuid":
            return _method(lambda sim, _s, ref: sim.db.snapshot(cls, ref)[field], 1)
        return None
    writable = WRITABLE.get(cls, set())
    if verb.startswith("set_") and verb[4:] in writable:
        return _method(lambda sim, _s, ref, value: _set(sim, cls, ref, verb[4:], value), 2)
    if verb.startswith("add_to_") and verb[7:] in MAPS.get(cls, set()):
        return _method(lambda sim, _s, ref, k, v: _add_to(sim, cls, ref, verb[7:], k, v), 3)
    if verb.startswith("remove_from_") and verb[12:] in MAPS.get(cls, set()):
        return _method(lambda sim, _s, ref, k: _remove_from(sim, cls, ref, verb[12:], k), 2)
    if verb.startswith("add_") and verb[4:] in SETS.get(cls, set()):
        return _method(lambda sim, _s, ref, item: _add(sim, cls, ref, verb[4:], item), 2)
    if verb.startswith("remove_") and verb[7:] in SETS.get(cls, set()):
        return _method(lambda sim, _s, ref, item: _remove(sim, cls, ref, verb[7:], item), 2)
    return None


def _typed(cls: str, field: str, value: Any) -> Any:
    """xapi rejects a value of the wrong wire type (the simulator checks the common cases)."""
    default = FIELDS[cls][field]
    ok = {
        dict: lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        list: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
        float: lambda v: isinstance(v, float | int) and not isinstance(v, bool),
    }.get(type(default), lambda v: True)
    if not ok(value):
        raise XapiError("FIELD_TYPE_ERROR", field)
    return float(value) if isinstance(default, float) else value


def _set(sim: Simulator, cls: str, ref: str, field: str, value: Any) -> str:
    if field == "affinity" and value != "OpaqueRef:NULL":
        sim.db.get("host", value)
    sim.db.update(cls, ref, **{field: _typed(cls, field, value)})
    return ""


def _add_to(sim: Simulator, cls: str, ref: str, field: str, key: str, value: str) -> str:
    record = sim.db.get(cls, ref)
    if key in record[field]:
        raise XapiError("MAP_DUPLICATE_KEY", cls, field, record["uuid"], key)
    sim.db.update(cls, ref, **{field: {**record[field], key: _typed_str(value)}})
    refresh_allowed(sim, cls, ref)  # blocked_operations change what xapi allows
    return ""


def _remove_from(sim: Simulator, cls: str, ref: str, field: str, key: str) -> str:
    record = sim.db.get(cls, ref)
    sim.db.update(cls, ref, **{field: {k: v for k, v in record[field].items() if k != key}})
    refresh_allowed(sim, cls, ref)
    return ""


def _add(sim: Simulator, cls: str, ref: str, field: str, item: str) -> str:
    record = sim.db.get(cls, ref)
    if _typed_str(item) not in record[field]:
        sim.db.update(cls, ref, **{field: [*record[field], item]})
    return ""


def _remove(sim: Simulator, cls: str, ref: str, field: str, item: str) -> str:
    record = sim.db.get(cls, ref)
    sim.db.update(cls, ref, **{field: [x for x in record[field] if x != item]})
    return ""


def _typed_str(value: Any) -> str:
    if not isinstance(value, str):
        raise XapiError("FIELD_TYPE_ERROR", "value")
    return value
