"""The layout holds: no two rooms of bot/ import each other, XenAPI stays in bot/xen/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> Iterator[tuple[str, Path]]:
    for top in ("bot", "handlers"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(p for p in parts if p != "__init__"), path


def _imports(name: str, path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against the importing package
                package = name.split(".")[: -node.level + (path.name == "__init__.py")]
                base = ".".join([*package, node.module])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def room(module: str) -> str | None:
    """bot's rooms are its packages and its top-level modules; handlers/ is one room."""
    parts = module.split(".")
    if parts[0] == "handlers":
        return "handlers"
    if parts[0] != "bot" or len(parts) < 2:
        return None
    return f"bot.{parts[1]}"


def room_graph() -> dict[str, set[str]]:
    names = {name for name, _ in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in _modules():
        source = room(name)
        if source is None:
            continue
        for target in _imports(name, path):
            # `from bot.slack import blocks` names a module: keep only real ones
            while target not in names and "." in target:
                target = target.rsplit(".", 1)[0]
            dest = room(target)
            if dest and dest != source:
                graph.setdefault(source, set()).add(dest)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of rooms that reach each other."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {node: reach(node) for node in graph}
    return sorted((a, b) for a in graph for b in reached[a] if a < b and a in reached.get(b, set()))


def test_no_two_rooms_import_each_other() -> None:
    """The import graph between bot's rooms (and handlers/) has no cycle."""
    assert cycles(room_graph()) == []


def test_the_checker_sees_a_cycle() -> None:
    """A made-up graph with a loop through three rooms is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_xenapi_is_imported_only_in_bot_xen() -> None:
    """Every XenAPI import lives in bot/xen/ (the simulator speaks the wire, not the client)."""
    outside = [
        name
        for name, path in _modules()
        if "XenAPI" in _imports(name, path) and not name.startswith("bot.xen")
    ]
    assert outside == []


GROUND = {"bot.settings", "bot.clock", "bot.logs", "bot.models", "bot.states", "bot.errors"}
ALLOWED = {  # what each room's __init__.py says it may import
    "bot.store": GROUND,
    "bot.xen": GROUND,
    "bot.planning": GROUND | {"bot.xen"},
    "bot.engine": GROUND | {"bot.planning", "bot.store", "bot.xen", "bot.messages"},
    "bot.slack": GROUND
    | {"bot.planning", "bot.engine", "bot.store", "bot.metrics", "bot.messages"},
    "handlers": GROUND | {"bot.planning", "bot.slack"},
    "bot.simulator": GROUND,
    "bot.slackdouble": GROUND,
}


def test_each_room_imports_only_what_its_docstring_allows() -> None:
    """Data flows one way: e.g. slack/ never imports xen/ or handlers/, store/ only the ground."""
    graph = room_graph()
    extra = {room: sorted(graph.get(room, set()) - allowed) for room, allowed in ALLOWED.items()}
    assert {room: rooms for room, rooms in extra.items() if rooms} == {}


def test_the_top_level_holds_a_dozen_modules_at_most() -> None:
    """bot/'s top level is the shared ground and the wiring; everything else has a room."""
    top = [p.name for p in (ROOT / "bot").glob("*.py") if p.name not in ("__init__.py",)]
    assert len(top) <= 12, top
