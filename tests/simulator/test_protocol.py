"""The simulator speaks xapi's XML-RPC as the real XenAPI client sees it."""

from __future__ import annotations

import http.client
import urllib.request
import xmlrpc.client

import pytest
import XenAPI

from tests.support.pool import Pool


def test_login_wrong_password_fails(pool: Pool) -> None:
    """A wrong password is SESSION_AUTHENTICATION_FAILED with the user name."""
    session = XenAPI.Session(pool.server.url)
    pool.opened.append(session)
    with pytest.raises(XenAPI.Failure) as failure:
        session.xenapi.login_with_password("root", "wrong", "1.0", "tests")
    assert failure.value.details == [
        "SESSION_AUTHENTICATION_FAILED",
        "root",
        "Authentication failure",
    ]


def test_refs_uuids_and_wire_types(pool: Pool) -> None:
    """Refs are OpaqueRef:…, 64-bit ints arrive as strings, datetimes as DateTime."""
    vm = pool.ref("VM", "vm01")
    record = pool.x.VM.get_record(vm)
    assert vm.startswith("OpaqueRef:")
    assert record["memory_static_max"] == str(8 * 1024**3)
    assert record["domid"] != "-1" and isinstance(record["domid"], str)
    assert isinstance(record["snapshot_time"], xmlrpc.client.DateTime)
    assert record["snapshot_time"].value == "19700101T00:00:00Z"
    assert pool.x.VM.get_by_uuid(record["uuid"]) == vm
    assert pool.x.VM.get_resident_on(vm) == pool.ref("host", "host1")
    assert isinstance(record["is_a_template"], bool)


def test_errors_for_unknown_method_bad_ref_and_arity(pool: Pool) -> None:
    """Unknown method, bad ref, bad uuid and wrong arity fail as xapi fails them."""
    cases = [
        (lambda: pool.x.VM.explode(), ["MESSAGE_METHOD_UNKNOWN", "VM.explode"]),
        (
            lambda: pool.x.VM.get_power_state("OpaqueRef:nope"),
            ["HANDLE_INVALID", "VM", "OpaqueRef:nope"],
        ),
        (lambda: pool.x.VM.get_by_uuid("nope"), ["UUID_INVALID", "VM", "nope"]),
        (
            lambda: pool.x.VM.get_record(),
            ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"],
        ),
    ]
    for call, expected in cases:
        with pytest.raises(XenAPI.Failure) as failure:
            call()
        assert failure.value.details == expected


def test_async_of_a_getter_is_refused(pool: Pool) -> None:
    """Getters have no Async form, as in xapi."""
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.Async.VM.get_power_state(pool.ref("VM", "vm01"))
    assert failure.value.details[0] == "Fault"


def test_both_paths_and_alternative_names(pool: Pool) -> None:
    """POST / and POST /RPC2 both answer; `VM_get_name_label` is `VM.get_name_label`."""
    vm = pool.ref("VM", "vm01")
    for url in (pool.server.url, pool.server.url + "/"):
        other = pool.login(url)
        assert other.xenapi.VM_get_name_label(vm) == "vm01"


def test_malformed_body_is_http_500(pool: Pool) -> None:
    """Garbage that is not XML-RPC gets an HTTP 500 page, not an envelope."""
    request = urllib.request.Request(pool.server.url + "/", data=b"<nonsense", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    error.value.close()
    assert error.value.code == 500


def test_expired_session_is_renewed_by_the_client(pool: Pool) -> None:
    """SESSION_INVALID makes the XenAPI client log in again and replay the call."""
    before = pool.sim.calls.counts["session.login_with_password"]
    pool.sim.expire_sessions()
    assert pool.x.VM.get_name_label(pool.ref("VM", "vm01")) == "vm01"
    assert pool.sim.calls.counts["session.login_with_password"] == before + 1


def test_session_limit_per_call_count(pool: Pool) -> None:
    """A session that has served its quota of calls expires; the client recovers."""
    pool.sim.faults.session_max_calls = 3
    for _ in range(5):
        pool.x.pool.get_all()
    assert pool.sim.calls.counts["session.login_with_password"] >= 2


def test_idle_session_expires(pool: Pool) -> None:
    """A session unused for 24 h is invalid; the raw call sees SESSION_INVALID."""
    proxy = pool.raw()
    session = proxy.session.login_with_password("root", "secret", "1.0", "raw")["Value"]
    pool.clock.advance(86401)
    answer = proxy.pool.get_all(session)
    assert answer == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", session]}


def test_logout_ends_the_session(pool: Pool) -> None:
    """After session.logout the session ref is no longer valid."""
    proxy = pool.raw()
    session = proxy.session.login_with_password("root", "secret")["Value"]
    assert proxy.session.logout(session)["Status"] == "Success"
    assert proxy.pool.get_all(session)["ErrorDescription"][0] == "SESSION_INVALID"


def test_listings_and_duplicate_names(pool: Pool) -> None:
    """get_all_records covers every VM; two VMs share the name 'web'; templates are marked."""
    records = pool.x.VM.get_all_records()
    names = [r["name_label"] for r in records.values() if not r["is_a_template"]]
    assert names.count("web") == 2
    assert len(pool.x.VM.get_all()) == len(records)
    templates = [r for r in records.values() if r["is_a_template"]]
    assert templates and all(r["power_state"] == "Halted" for r in templates)
    dom0 = [r for r in records.values() if r["is_control_domain"]]
    assert len(dom0) == 3
    assert pool.x.SR.get_by_name_label("nope") == []


def test_tags_and_other_config_setters(pool: Pool) -> None:
    """add_tags/remove_tags and add_to/remove_from_other_config edit the record."""
    vm = pool.ref("VM", "vm01")
    pool.x.VM.add_tags(vm, "xo:no-bak=migrate-bot #1")
    assert "xo:no-bak=migrate-bot #1" in pool.x.VM.get_tags(vm)
    pool.x.VM.remove_tags(vm, "xo:no-bak=migrate-bot #1")
    assert pool.x.VM.get_tags(vm) == []
    pool.x.VM.add_to_other_config(vm, "migrate-bot", "42")
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.add_to_other_config(vm, "migrate-bot", "43")
    assert failure.value.details[0] == "MAP_DUPLICATE_KEY"
    pool.x.VM.remove_from_other_config(vm, "migrate-bot")
    assert "migrate-bot" not in pool.x.VM.get_other_config(vm)
    pool.x.VM.set_affinity(vm, pool.ref("host", "host3"))
    assert pool.x.VM.get_affinity(vm) == pool.ref("host", "host3")


def test_read_only_field_has_no_setter(pool: Pool) -> None:
    """power_state cannot be set by a client."""
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.set_power_state(pool.ref("VM", "vm01"), "Halted")
    assert failure.value.details[0] == "MESSAGE_METHOD_UNKNOWN"


def test_event_from_needs_a_float_timeout(pool: Pool) -> None:
    """event.from with an int timeout fails like xapi's strict float parsing."""
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.event_from(["vm"], "", 1)
    assert failure.value.details[0] == "INTERNAL_ERROR"


def test_event_from_full_dump_then_changes(pool: Pool) -> None:
    """An empty token lists every object; later tokens return only what changed."""
    first = pool.x.event_from(["vm"], "", 0.0)
    assert {e["operation"] for e in first["events"]} == {"add"}
    assert len(first["events"]) == len(pool.x.VM.get_all())
    assert first["valid_ref_counts"]["vm"] == len(pool.x.VM.get_all())
    vm = pool.ref("VM", "vm02")
    pool.x.VM.add_tags(vm, "x")
    second = pool.x.event_from(["vm"], first["token"], 0.0)
    assert [(e["operation"], e["ref"]) for e in second["events"]] == [("mod", vm)]
    assert second["events"][0]["snapshot"]["tags"][-1] == "x"
    assert second["token"] > first["token"]


def test_event_from_bad_token_and_class(pool: Pool) -> None:
    """Unparseable tokens and unknown classes fail with xapi's codes."""
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.event_from(["vm"], "garbage", 0.0)
    assert failure.value.details[0] == "EVENT_FROM_TOKEN_PARSE_FAILURE"
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.event_from(["spaceship"], "", 0.0)
    assert failure.value.details[0] == "EVENT_SUBSCRIPTION_PARSE_FAILURE"


def test_event_inject_wakes_a_watcher(pool: Pool) -> None:
    """event.inject returns a token from which the injected object is reported."""
    token = pool.x.event.inject("pool", pool.x.pool.get_all()[0])
    events = pool.x.event_from(["pool"], token, 0.0)["events"]
    assert [e["class"] for e in events] == ["pool"]


def test_dropped_connections_then_recovery(pool: Pool) -> None:
    """While connections drop the client sees a reset; afterwards calls work again."""
    pool.sim.faults.drop_until = pool.clock.now() + 30
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        pool.login()
    pool.clock.advance(31)
    assert pool.login().xenapi.pool.get_all()


def test_call_log_counts_methods(pool: Pool) -> None:
    """Every call is counted by method name, for tests and benchmarks."""
    pool.sim.calls.reset()
    pool.x.VM.get_all()
    pool.x.VM.get_all()
    pool.x.host.get_all_records()
    assert pool.sim.calls.counts == {"VM.get_all": 2, "host.get_all_records": 1}
    assert pool.sim.calls.total == 3
