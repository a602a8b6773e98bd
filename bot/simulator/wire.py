"""XML-RPC bytes the way xapi writes them (rpclib), and the errors xapi returns.

xapi never answers with an XML-RPC `<fault>`: every reply is a struct with `Status`
and `Value` or `ErrorDescription`. Strings, refs, enums and 64-bit ints travel as a bare
`<value>text</value>`; only `valid_ref_counts` uses `<i4>`. Records in the simulator are
stored already in this wire form (ints as decimal strings), so encoding is mechanical.
"""

from __future__ import annotations

import time
import uuid
import xmlrpc.client
from typing import Any
from xml.sax.saxutils import escape

NULL_REF = "OpaqueRef:NULL"


class XapiError(Exception):
    """An xapi failure: `ErrorDescription` = [code, *params], all strings."""

    def __init__(self, code: str, *params: object) -> None:
        self.description = [code, *(str(p) for p in params)]
        super().__init__(self.description)

    @property
    def code(self) -> str:
        return self.description[0]


def new_ref() -> str:
    return f"OpaqueRef:{uuid.uuid4()}"


def new_uuid() -> str:
    return str(uuid.uuid4())


def wire_int(value: int) -> str:
    """xapi's int64: a decimal string on the wire."""
    return str(int(value))


def wire_time(epoch: float) -> xmlrpc.client.DateTime:
    """xapi's datetime: basic ISO 8601 in UTC with a `Z` (`20250319T04:16:24Z`)."""
    return xmlrpc.client.DateTime(time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime(epoch)))


EPOCH = wire_time(0)


def _value(v: Any, out: list[str]) -> None:
    if isinstance(v, bool):
        out.append(f"<value><boolean>{int(v)}</boolean></value>")
    elif isinstance(v, str):
        out.append(f"<value>{escape(v)}</value>")
    elif isinstance(v, int):
        out.append(f"<value><i4>{v}</i4></value>")
    elif isinstance(v, float):
        out.append(f"<value><double>{v:.16g}</double></value>")
    elif isinstance(v, xmlrpc.client.DateTime):
        out.append(f"<value><dateTime.iso8601>{v.value}</dateTime.iso8601></value>")
    elif isinstance(v, dict):
        out.append("<value><struct>")
        for key, item in v.items():
            out.append(f"<member><name>{escape(str(key))}</name>")
            _value(item, out)
            out.append("</member>")
        out.append("</struct></value>")
    elif isinstance(v, list | tuple | set | frozenset):
        out.append("<value><array><data>")
        for item in v:
            _value(item, out)
        out.append("</data></array></value>")
    elif v is None:
        out.append("<value></value>")
    else:  # pragma: no cover - a simulator bug, not a client error
        raise TypeError(f"cannot encode {type(v).__name__} for the wire")


def encode_value(v: Any) -> str:
    """One value as an XML fragment (also a task's `result`)."""
    out: list[str] = []
    _value(v, out)
    return "".join(out)


def response(envelope: dict[str, Any]) -> bytes:
    body = encode_value(envelope)
    return (
        '<?xml version="1.0"?><methodResponse><params><param>' + body + "</param></params>"
        "</methodResponse>"
    ).encode()


def success(value: Any) -> bytes:
    return response({"Status": "Success", "Value": "" if value is None else value})


def failure(description: list[str]) -> bytes:
    return response({"Status": "Failure", "ErrorDescription": description})
