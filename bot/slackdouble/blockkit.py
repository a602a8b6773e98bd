"""Block Kit limits Slack enforces, so a message the double accepts is one Slack would too.

Pure: `problems(blocks, max_blocks)` lists what breaks a limit, in Slack's own wording
(`must be less than 51 items [json-pointer:/blocks]`); an empty list means valid. It
checks counts and lengths, not the full schema.
"""

from __future__ import annotations

from typing import Any

# Lengths in characters, by the type of the object holding the field (dots go into dicts).
_LENGTHS: dict[str, tuple[tuple[str, int], ...]] = {
    "header": (("text.text", 150),),
    "section": (("text.text", 3000),),
    "button": (("text.text", 75), ("value", 2000), ("url", 3000)),
    "option": (("text.text", 75), ("value", 150)),
    "confirm": (("title.text", 100), ("text.text", 300), ("confirm.text", 30), ("deny.text", 30)),
    "modal": (("title.text", 24), ("submit.text", 24), ("close.text", 24)),
}
_COUNTS: dict[str, tuple[tuple[str, int], ...]] = {
    "section": (("fields", 10),),
    "actions": (("elements", 25),),
    "context": (("elements", 10),),
    "static_select": (("options", 100),),
}
_CHILDREN = ("accessory", "element", "elements", "options", "confirm")
_IMPLIED = {"options": "option", "confirm": "confirm"}
_STYLES = ("primary", "danger")


def problems(blocks: object, max_blocks: int, root: str = "/blocks") -> list[str]:
    """What in `blocks` breaks a Block Kit limit (50 blocks in a message, 100 in a modal)."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{root}]"]
    found = [] if len(blocks) <= max_blocks else [_say(f"less than {max_blocks + 1} items", root)]
    for index, block in enumerate(blocks):
        found += _check(block, f"{root}/{index}", None)
    return found


def view_problems(view: object) -> list[str]:
    """A modal's own limits (title, submit, close, private_metadata) and its blocks'."""
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    found = _check(view, "/view", None)
    if len(str(view.get("private_metadata", ""))) > 3000:
        found.append(_say("less than 3001 characters", "/view/private_metadata"))
    return found + problems(view.get("blocks", []), 100, "/view/blocks")


def _check(item: object, pointer: str, implied: str | None) -> list[str]:
    """`implied` names the kind of objects that carry no `type` (options, confirm dialogs)."""
    kind = item.get("type", implied) if isinstance(item, dict) else None
    if not isinstance(item, dict) or not isinstance(kind, str):
        return [f"missing required field: type [json-pointer:{pointer}]"]
    found = [
        _say(f"less than {limit + 1} characters", f"{pointer}/{name.replace('.', '/')}")
        for name, limit in (*_LENGTHS.get(kind, ()), ("block_id", 255), ("action_id", 255))
        if len(str(_dig(item, name))) > limit
    ]
    found += [
        _say(f"less than {limit + 1} items", f"{pointer}/{name}")
        for name, limit in _COUNTS.get(kind, ())
        if len(item.get(name) or []) > limit
    ]
    if kind == "button" and item.get("style", "primary") not in _STYLES:
        found.append(f"must be one of {list(_STYLES)} [json-pointer:{pointer}/style]")
    for name in _CHILDREN:
        child = item.get(name)
        if isinstance(child, list):
            for index, each in enumerate(child):
                found += _check(each, f"{pointer}/{name}/{index}", _IMPLIED.get(name))
        elif child:
            found += _check(child, f"{pointer}/{name}", _IMPLIED.get(name))
    return found


def _dig(item: dict[str, Any], dotted: str) -> Any:
    value: Any = item
    for part in dotted.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


def _say(limit: str, pointer: str) -> str:
    return f"must be {limit} [json-pointer:{pointer}]"
