"""`<Class>.get_all_records_where`: xapi's filter language, its errors, and its speed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import XenAPI

from bot.simulator.filters import records_where
from bot.simulator.scenario import generate, read
from tests.support.pool import Pool, scenario_pool


def _failure(call) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(XenAPI.Failure) as failure:
        call()
    return failure.value.details


def test_vms_on_or_bound_to_a_host(pool: Pool) -> None:
    """The evacuation query: every VM resident on host1 or with host1 as its affinity,
    the control domain included (the caller leaves it out)."""
    host1 = pool.ref("host", "host1")
    found = pool.x.VM.get_all_records_where(
        f'field "resident_on" = "{host1}" or field "affinity" = "{host1}"'
    )
    everything = pool.x.VM.get_all_records()
    expected = {ref for ref, r in everything.items() if host1 in (r["resident_on"], r["affinity"])}
    assert set(found) == expected
    assert found[pool.ref("VM", "vm01")] == everything[pool.ref("VM", "vm01")]
    assert any(r["is_control_domain"] for r in found.values())
    assert all(r["resident_on"] == host1 for r in found.values() if r["is_control_domain"])


def test_disks_of_several_vms(pool: Pool) -> None:
    """`field "VM" = "…" or …` gives the VBDs of those VMs (CD drives too)."""
    vms = [pool.ref("VM", name) for name in ("vm01", "vm02", "archive01")]
    expr = " or ".join(f'field "VM" = "{vm}"' for vm in vms)
    found = pool.x.VBD.get_all_records_where(expr)
    assert set(found) == {vbd for vm in vms for vbd in pool.x.VM.get_VBDs(vm)}
    assert {r["VM"] for r in found.values()} == set(vms)


def test_values_compare_as_the_database_holds_them(pool: Pool) -> None:
    """Bools are "true"/"false", enums as named, ints in decimal, refs as OpaqueRef:…,
    namespaced fields by their column (`name__label`, `memory__static_max`), sets as
    S-expressions, and `_ref` is the row's ref."""
    vm01 = pool.ref("VM", "vm01")
    x = pool.x
    one = {vm01}
    assert set(x.VM.get_all_records_where('field "name__label" = "vm01"')) == one
    assert set(x.VM.get_all_records_where(f'field "_ref" = "{vm01}"')) == one
    assert set(x.VM.get_all_records_where(f'field "uuid" = "{x.VM.get_uuid(vm01)}"')) == one
    size = x.VM.get_memory_static_max(vm01)
    sized = x.VM.get_all_records_where(f'field "memory__static_max" = "{size}"')
    assert vm01 in sized and all(r["memory_static_max"] == size for r in sized.values())
    templates = x.VM.get_all_records_where('field "is_a_template" = "true"')
    assert templates and all(r["is_a_template"] for r in templates.values())
    halted = x.VM.get_all_records_where(
        'field "power_state" = "Halted" and field "is_a_template" = "false" and '
        'field "is_a_snapshot" = "false"'
    )
    assert pool.ref("VM", "archive01") in halted
    assert all(r["power_state"] == "Halted" for r in halted.values())
    tagged = x.VM.get_all_records_where('field "tags" = "(\'xo:no-bak=dev box\')"')
    assert set(tagged) == {pool.ref("VM", "vm02")}
    untagged = x.VM.get_all_records_where('field "tags" = "()"')
    assert vm01 in untagged and pool.ref("VM", "vm02") not in untagged
    assert x.host.get_all_records_where('field "API_version__major" = "2"').keys() == set(
        x.host.get_all()
    )


def test_operators_and_precedence(pool: Pool) -> None:
    """`and` and `or` bind equally, left to right; `not` takes the rest of the expression;
    parentheses group; `true`, `false` and literal comparisons are expressions too."""
    every = set(pool.x.VM.get_all())
    where = pool.x.VM.get_all_records_where
    assert set(where("true")) == every
    assert set(where("false")) == set()
    assert set(where('"a" = "a"')) == every and set(where('"a" = "b"')) == set()
    assert set(where("true or false and false")) == set()  # (true or false) and false
    assert set(where("false and false or true")) == every  # (false and false) or true
    assert set(where("not true and false")) == every  # not (true and false)
    assert set(where("(not true) and false")) == set()
    assert set(where("not not true")) == every
    assert set(where('\tnot(field "name__label"="vm01")\n')) == every - {pool.ref("VM", "vm01")}


def test_a_malformed_expression_is_invalid_value(pool: Pool) -> None:
    """What ocamlyacc refuses is `Stdlib.Parsing.Parse_error`; what ocamllex cannot read
    (a single quote, capitals, an unterminated string, any other character) is its
    `Failure("lexing: empty token")`; both come back as INVALID_VALUE [expr, exception]."""
    where = pool.x.VM.get_all_records_where
    parse_error = "Stdlib.Parsing.Parse_error"
    lex_error = 'Failure("lexing: empty token")'
    cases = {
        "": parse_error,
        'field "name__label"': parse_error,
        'field "name__label" = "a" "b"': parse_error,
        "(true": parse_error,
        "true)": parse_error,
        "true and": parse_error,
        'field name__label = "a"': lex_error,
        "field \"name__label\" = 'vm01'": lex_error,
        "TRUE": lex_error,
        "true AND true": lex_error,
        'field "name__label" = "vm01': lex_error,
        "true; false": lex_error,
        'field "name__label" != "a"': lex_error,
        'field "name__label" == "a"': parse_error,
    }
    for expr, printed in cases.items():
        assert _failure(lambda e=expr: where(e)) == ["INVALID_VALUE", expr, printed], expr


def test_an_unknown_field_fails_only_when_a_row_reaches_it(pool: Pool) -> None:
    """A field that is no database column (the wire name `name_label` included) is
    INTERNAL_ERROR ["missing field", name, ""], but only once a comparison with it is
    evaluated: short-circuit and an empty table never reach it."""
    where = pool.x.VM.get_all_records_where
    missing = ["INTERNAL_ERROR", "missing field", "name_label", ""]
    assert _failure(lambda: where('field "name_label" = "vm01"')) == missing
    assert _failure(lambda: where('field "bogus" = field "name_label"'))[2] == "name_label"
    assert where('false and field "bogus" = "x"') == {}
    assert set(where('true or field "bogus" = "x"')) == set(pool.x.VM.get_all())
    vm01 = pool.ref("VM", "vm01")
    assert _failure(lambda: where(f'field "_ref" = "{vm01}" or field "bogus" = "x"'))[2] == (
        "bogus"
    )
    assert pool.x.VDI.get_all_records_where('field "name__label" = "nothing"') == {}


def test_which_classes_have_it(pool: Pool) -> None:
    """xapi exposes get_all, get_all_records and get_all_records_where for every class but
    session (and event); there is no get_all_where; the expression is one parameter."""
    assert _failure(lambda: pool.x.session.get_all_records_where("true"))[0] == (
        "MESSAGE_METHOD_UNKNOWN"
    )
    assert _failure(lambda: pool.x.session.get_all())[0] == "MESSAGE_METHOD_UNKNOWN"
    assert _failure(lambda: pool.x.VM.get_all_where("true")) == [
        "MESSAGE_METHOD_UNKNOWN",
        "VM.get_all_where",
    ]
    assert _failure(lambda: pool.x.VM.get_all_records_where()) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.get_all_records_where",
        "1",
        "0",
    ]
    for cls in ("pool", "host", "host_metrics", "SR", "PBD", "VDI", "VBD", "VIF", "network"):
        assert set(getattr(pool.x, cls).get_all_records_where("true")) == set(
            getattr(pool.x, cls).get_all()
        )
    assert pool.x.task.get_all_records_where("true") == {}


@pytest.fixture
def old() -> Iterator[Pool]:
    yield from scenario_pool({**read("old"), "timing": {}})


def test_an_old_pool(old: Pool) -> None:
    """XenServer 7.1 (OCaml 4.02) prints `Parsing.Parse_error`; a field its release lacks
    (VDI.cbt_enabled) is a missing field, and records leave it out."""
    assert _failure(lambda: old.x.VM.get_all_records_where("(")) == [
        "INVALID_VALUE",
        "(",
        "Parsing.Parse_error",
    ]
    assert _failure(lambda: old.x.VDI.get_all_records_where('field "cbt_enabled" = "false"')) == [
        "INTERNAL_ERROR",
        "missing field",
        "cbt_enabled",
        "",
    ]
    records = old.x.VDI.get_all_records_where('field "read_only" = "false"')
    assert records and all("cbt_enabled" not in r for r in records.values())


@pytest.fixture
def large() -> Iterator[Pool]:
    yield from scenario_pool(generate())  # `--scenario large`: 1,000 VMs, 16 hosts


def test_three_hundred_terms_on_the_large_pool(large: Pool) -> None:
    """300 `field "VM" = "…"` terms over the large pool's VBDs answer the right disks at
    once; the expression is parsed once and a run of terms on one field is one lookup per
    row, so 3,000 terms cost no more than 300."""
    x = large.x
    vms = sorted(
        ref
        for ref, r in x.VM.get_all_records().items()
        if r["power_state"] == "Running" and not r["is_control_domain"]
    )[:300]
    assert len(vms) == 300
    expr = " or ".join(f'field "VM" = "{vm}"' for vm in vms)
    started = time.perf_counter()
    found = x.VBD.get_all_records_where(expr)
    elapsed = time.perf_counter() - started
    expected = {ref for ref, r in x.VBD.get_all_records().items() if r["VM"] in set(vms)}
    assert set(found) == expected and len(found) == 300
    assert elapsed < 2.0, elapsed
    host = x.host.get_all()[0]
    on_host = x.VM.get_all_records_where(
        f'field "resident_on" = "{host}" or field "affinity" = "{host}"'
    )
    assert on_host and all(host in (r["resident_on"], r["affinity"]) for r in on_host.values())
    sim = large.sim
    many = " or ".join(f'field "VM" = "OpaqueRef:{n:08d}"' for n in range(3000))
    with sim.db.lock:
        started = time.perf_counter()
        assert records_where(sim, "VBD", many) == {}
        assert time.perf_counter() - started < 1.0
