"""`<Class>.get_all_records_where(expr)`: xapi's database filter language.

The language and its errors, from xapi's source:

- Lexer (`ocaml/database/db_filter_lex.mll`): blanks are `' '`, `'\\t'` and `'\\n'` only;
  tokens `=`, `(`, `)`, the lowercase words `true`, `false`, `field`, `and`, `or`, `not`,
  and `"…"` (any characters but `"`, no escapes). Anything else (a `'`, an upper-case
  `AND`, an unterminated quote, a `\\r`) is ocamllex's `Failure "lexing: empty token"`.
- Grammar (`ocaml/database/db_filter_parse.mly`, ocamlyacc): `value = value`, where a
  value is `"literal"` or `field "name"`; `expr and expr`, `expr or expr`, `not expr`,
  `true`, `false`, `( expr )`. Precedence: `%right LNOT` then `%left LAND LOR`, so `and`
  and `or` bind equally, left to right (`a or b and c` is `(a or b) and c`), and `not`
  binds loosest: it takes everything to its right up to `)` or the end (`not a and b` is
  `not (a and b)`). A token out of place is `Parsing.Parse_error`.
- Either error reaches the client as `INVALID_VALUE [expr, Printexc.to_string exn]`
  (`ocaml/database/db_filter.ml` `expr_of_string` raises `Expression_error`, mapped by
  `ocaml/xapi/exnHelper.ml`): `Failure("lexing: empty token")` or
  `Stdlib.Parsing.Parse_error` (`Parsing.Parse_error` from an OCaml older than 4.07, i.e.
  the XenServer 7 releases).
- Evaluation (`db_filter.ml` `eval_expr`, `ocaml/database/db_cache_impl.ml`
  `find_refs_with_filter_internal`): each row, `=` compares two strings, a field's being
  its database form (`Schema.Value.marshal`): strings, refs (`OpaqueRef:…`), enums as
  named (`Running`), ints in decimal, bools `true`/`false`, floats `%.18g`, sets
  `('a' 'b')` and maps `(('k' 'v'))` as S-expressions (`sexpr/sExpr.ml`). Field names are
  database columns: a namespaced field's parts are joined by `__` (`escaping.ml`), so
  `name_label` is `field "name__label"` and `VM.memory_static_max` is
  `field "memory__static_max"`; `_ref` is the row's ref. `and`/`or` short-circuit, and a
  field is looked up only when its comparison is evaluated, so an unknown one fails
  (`Db_cache_types.Row.find`: `INTERNAL_ERROR ["missing field", name, ""]`) only once a
  row reaches it (an empty table, or `false and field "x" = "y"`, never fails).

The expression is parsed once into a closure; a run of `field "f" = "…"` comparisons
joined by `or` (the bot's `field "VM" = "…" or field "VM" = "…" …`) becomes one set
lookup per row, which keeps short-circuit order and errors exactly as xapi's left fold.
"""

from __future__ import annotations

import math
import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any

from bot.simulator.pool import Simulator
from bot.simulator.wire import XapiError

LEX_ERROR = 'Failure("lexing: empty token")'
BLANKS = " \t\n"
KEYWORDS = ("true", "false", "field", "and", "or", "not")

# The namespaces of the simulator's fields in xapi's datamodel (`ocaml/idl/datamodel*.ml`:
# `namespace ~name:"memory" ~contents:guest_memory` and the like): their database columns
# join namespace and field with "__".
NAMESPACES: dict[str, tuple[str, ...]] = {
    "VM": ("name", "memory", "VCPUs", "HVM", "PV"),
    "host": ("name", "memory", "API_version"),
    "host_metrics": ("memory",),
    "VM_metrics": ("memory", "VCPUs"),
}
DEFAULT_NAMESPACES = ("name",)

Row = tuple[str, dict[str, Any]]  # (ref, record)
Pred = Callable[[Row], bool]


def db_column(cls: str, field: str) -> str:
    """The database column of a wire field name: `name_label` -> `name__label`."""
    for space in NAMESPACES.get(cls, DEFAULT_NAMESPACES):
        if field.startswith(space + "_") and len(field) > len(space) + 1:
            return f"{space}__{field[len(space) + 1 :]}"
    return field


def _atom(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
    return f"'{escaped}'"


def db_string(value: Any) -> str:
    """A field's value as xapi's database holds it (what `=` compares)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.18g}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, xmlrpc.client.DateTime):
        return value.value
    if isinstance(value, dict):
        return "(" + " ".join(f"({_atom(str(k))} {_atom(str(v))})" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "(" + " ".join(_atom(str(item)) for item in value) + ")"
    return str(value)


# -- lexer ------------------------------------------------------------------------------


class _Lexer:
    """Tokens on demand, as the ocamlyacc parser asks for them: a lexing error is raised
    only when the parser reaches it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.peeked: tuple[str, str] | None = None

    def _next(self) -> tuple[str, str]:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in BLANKS:
            pos += 1
        if pos == len(text):
            self.pos = pos
            return ("EOF", "")
        char = text[pos]
        if char in "=()":
            self.pos = pos + 1
            return (char, char)
        if char == '"':
            end = text.find('"', pos + 1)
            if end >= 0:
                self.pos = end + 1
                return ("IDENT", text[pos + 1 : end])
        for word in KEYWORDS:
            if text.startswith(word, pos):
                self.pos = pos + len(word)
                return (word, word)
        raise _Failed(LEX_ERROR)

    def peek(self) -> str:
        if self.peeked is None:
            self.peeked = self._next()
        return self.peeked[0]

    def take(self) -> tuple[str, str]:
        self.peek()
        token, self.peeked = self.peeked, None
        assert token is not None
        return token


class _Failed(Exception):
    def __init__(self, printed: str) -> None:
        self.printed = printed


# -- parser: an AST of tuples -------------------------------------------------------------
# ("true",) ("false",) ("not", e) ("and", [e...]) ("or", [e...])
# ("eq", value, value) with value ("field", name) or ("literal", text)


class _Parser:
    def __init__(self, lexer: _Lexer, parse_error: str) -> None:
        self.lex = lexer
        self.parse_error = parse_error

    def fail(self) -> _Failed:
        return _Failed(self.parse_error)

    def expect(self, kind: str) -> str:
        token, text = self.lex.take()
        if token != kind:
            raise self.fail()
        return text

    def top(self) -> tuple:
        expr = self.expr()
        self.expect("EOF")
        return expr

    def expr(self) -> tuple:
        """A chain of operands joined by and/or, left to right; a `not` operand takes the
        rest of the chain (it binds loosest)."""
        left = self.operand()
        while self.lex.peek() in ("and", "or"):
            op = self.lex.take()[0]
            right = self.operand()
            if left[0] == op:
                left[1].append(right)
            else:
                left = (op, [left, right])
        return left

    def operand(self) -> tuple:
        token = self.lex.peek()
        if token == "not":
            self.lex.take()
            return ("not", self.expr())
        if token in ("true", "false"):
            self.lex.take()
            return (token,)
        if token == "(":
            self.lex.take()
            inner = self.expr()
            self.expect(")")
            return ("group", inner)  # a parenthesised chain is not extended by its neighbours
        left = self.value()
        self.expect("=")
        return ("eq", left, self.value())

    def value(self) -> tuple[str, str]:
        token, text = self.lex.take()
        if token == "IDENT":
            return ("literal", text)
        if token == "field":
            return ("field", self.expect("IDENT"))
        raise self.fail()


def parse(text: str, parse_error: str = "Stdlib.Parsing.Parse_error") -> tuple:
    """The expression's AST; XapiError INVALID_VALUE [text, exn] as xapi answers."""
    try:
        return _Parser(_Lexer(text), parse_error).top()
    except _Failed as failed:
        raise XapiError("INVALID_VALUE", text, failed.printed) from None


# -- compiler: AST -> predicate over (ref, record) ----------------------------------------


def _missing(column: str) -> XapiError:
    return XapiError("INTERNAL_ERROR", "missing field", column, "")


class _Compiler:
    def __init__(self, cls: str, lacking: frozenset[str], fields: dict[str, Any]) -> None:
        # database column -> wire field, for the fields this pool's release has
        self.columns = {db_column(cls, f): f for f in [*fields, "uuid"] if f not in lacking}

    def lookup(self, column: str) -> Callable[[Row], str]:
        if column == "_ref":
            return lambda row: row[0]
        field = self.columns.get(column)
        if field is None:

            def missing(row: Row) -> str:
                raise _missing(column)

            return missing
        return lambda row: db_string(row[1][field])

    def value(self, value: tuple[str, str]) -> Callable[[Row], str]:
        kind, text = value
        if kind == "literal":
            return lambda row: text
        return self.lookup(text)

    def compile(self, node: tuple) -> Pred:
        kind = node[0]
        if kind == "true":
            return lambda row: True
        if kind == "false":
            return lambda row: False
        if kind == "group":
            return self.compile(node[1])
        if kind == "not":
            inner = self.compile(node[1])
            return lambda row: not inner(row)
        if kind == "eq":
            return self.eq(node[1], node[2])
        if kind == "in":  # a run of `field "c" = "x"` joined by `or`
            get, values = self.lookup(node[1]), node[2]
            return lambda row: get(row) in values
        if kind == "or":
            parts = [self.compile(p) for p in _runs(node[1])]
            if len(parts) == 1:
                return parts[0]
            return lambda row: any(part(row) for part in parts)
        terms = [self.compile(p) for p in node[1]]
        return lambda row: all(term(row) for term in terms)

    def eq(self, left: tuple[str, str], right: tuple[str, str]) -> Pred:
        get_left, get_right = self.value(left), self.value(right)

        def equal(row: Row) -> bool:
            b = get_right(row)  # OCaml evaluates the arguments right to left
            return get_left(row) == b

        return equal


def _runs(terms: list[tuple]) -> Iterator[tuple]:
    """Consecutive `field "c" = "x"` terms on the same column become one ("in", c, set)
    node: the same order of evaluation, the same short-circuit, the same error."""
    run_column: str | None = None
    run: set[str] = set()
    for term in terms:
        pair = _field_literal(term)
        if pair is not None and pair[0] == run_column:
            run.add(pair[1])
            continue
        if run_column is not None:
            yield ("in", run_column, run)
            run_column, run = None, set()
        if pair is not None:
            run_column, run = pair[0], {pair[1]}
        else:
            yield term
    if run_column is not None:
        yield ("in", run_column, run)


def _field_literal(term: tuple) -> tuple[str, str] | None:
    """(column, literal) for `field "c" = "x"` or `"x" = field "c"`, else None."""
    if term[0] != "eq":
        return None
    (lk, lv), (rk, rv) = term[1], term[2]
    if lk == "field" and rk == "literal":
        return (lv, rv)
    if lk == "literal" and rk == "field":
        return (rv, lv)
    return None


def records_where(sim: Simulator, cls: str, expr: Any) -> dict[str, dict[str, Any]]:
    """xapi's `<Class>.get_all_records_where`: ref -> record of every row `expr` holds for."""
    from bot.simulator.schema import FIELDS

    if not isinstance(expr, str):
        raise XapiError("FIELD_TYPE_ERROR", "expr")
    tree = parse(expr, parse_error_name(sim))
    lacking = sim.db.lacking.get(cls, frozenset())
    predicate = _Compiler(cls, lacking, FIELDS[cls]).compile(tree)
    matched = [ref for ref, record in sim.db.tables[cls].items() if predicate((ref, record))]
    return {ref: sim.db.snapshot(cls, ref) for ref in matched}


def parse_error_name(sim: Simulator) -> str:
    """How the master's OCaml prints `Parsing.Parse_error`: with the `Stdlib.` prefix since
    OCaml 4.07 (the stdlib became a wrapped library); XenServer 7.x (API 2.6 to 2.11) was
    built with an older compiler."""
    if not sim.db.exists("pool", sim.pool_ref) or not sim.db.exists("host", sim.master):
        return "Stdlib.Parsing.Parse_error"
    host = sim.db.get("host", sim.master)
    api = (int(host["API_version_major"]), int(host["API_version_minor"]))
    return "Parsing.Parse_error" if api < (2, 12) else "Stdlib.Parsing.Parse_error"
