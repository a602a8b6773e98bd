"""The store: requests with compare-and-set transitions, steps issued once, the audit log.

Every test runs twice: on a SQLite file in a temporary folder, and on the session's
throwaway PostgreSQL server (`tests/support/postgres.py`), emptied for each test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.clock import ManualClock
from bot.states import ACTIVE, FINISHED, IllegalTransition, State
from bot.store.records import Request, VMBusy
from bot.store.schema import METADATA
from bot.store.store import MIGRATIONS, Store


def _alembic(conn: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


HEAD = ScriptDirectory.from_config(_alembic()).get_current_head()
ROW = {  # a request as an older bot stored it: only what the schema requires
    "state": "running",
    "revision": 1,
    "created_at": 0.0,
    "updated_at": 0.0,
    "requester": "U1",
    "command_text": "vm01 to host3 sr=nfs1",
    "vm_uuid": "vm-1",
    "vm_name": "vm01",
    "dest_host_uuid": "host-3",
    "dest_host_name": "host3",
    "mode": "live",
    "shutdown": "clean",
}

T = TypeVar("T")

THREADS = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(url: str, clock: ManualClock) -> Iterator[Store]:
    store = Store(url, clock)
    yield store
    store.close()


def new(store: Store, vm_uuid: str = "vm-1", **fields: Any) -> Request:
    """File a request with plausible defaults."""
    defaults: dict[str, Any] = {
        "requester": "U_REQ",
        "command_text": "vm01 to host3 mode=live",
        "vm_uuid": vm_uuid,
        "vm_name": "vm01",
        "dest_host_uuid": "host-3",
        "dest_host_name": "host3",
        "mode": "live",
        "plan": {"call": "pool_migrate", "disks": []},
    }
    return store.create_request(**{**defaults, **fields})


def approve(store: Store, request_id: int, actor: str = "U_LEAD") -> Request | None:
    return store.transition(
        request_id, State.APPROVED, actor=actor, action="approved", approved_by=actor
    )


def race(action: Callable[[int], T]) -> list[T | Exception]:
    """Run `action(i)` in THREADS threads released at once; each result or exception."""
    barrier = Barrier(THREADS)

    def run(i: int) -> T | Exception:
        barrier.wait()
        try:
            return action(i)
        except Exception as error:
            return error

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def actions(store: Store, request_id: int | None = None) -> list[str]:
    return [event.action for event in store.audit_events(request_id=request_id)]


# Requests


def test_create_and_get(store: Store, clock: ManualClock) -> None:
    """A new request is PENDING at revision 1, stamped by the clock, with its fields intact."""
    created = new(store, channel="C1", run_at=clock.now() + 60, tags_added=["xo:no-bak"])
    assert created.id == 1
    assert created.state is State.PENDING
    assert created.revision == 1
    assert created.created_at == created.updated_at == clock.now()
    assert created.plan == {"call": "pool_migrate", "disks": []}
    assert (created.shutdown, created.channel, created.message_ts) == ("clean", "C1", None)
    assert created.tags_added == ("xo:no-bak",)
    assert store.get(created.id) == created
    assert new(store, vm_uuid="vm-2").id == 2


def test_create_defaults(store: Store) -> None:
    """Unset optional fields are empty: no tags added, no error, no parent."""
    created = new(store)
    assert (created.tags_added, created.error, created.parent_id, created.outcome) == (
        (),
        None,
        None,
        None,
    )


def test_create_is_audited(store: Store) -> None:
    """Filing a request writes a `created` audit row whose actor is the requester."""
    created = new(store, requester="U_ALICE")
    [event] = store.audit_events()
    assert (event.request_id, event.actor, event.action) == (created.id, "U_ALICE", "created")
    assert event.details["vm_uuid"] == "vm-1"


def test_get_unknown(store: Store) -> None:
    """An unknown id is None, not an error."""
    assert store.get(999) is None


def test_unknown_fields_are_refused(store: Store) -> None:
    """Fields the table lacks, and those only the store sets, are a TypeError."""
    with pytest.raises(TypeError, match="bogus"):
        new(store, bogus=1)
    created = new(store)
    with pytest.raises(TypeError, match="state"):
        store.update(created.id, state=State.RUNNING)
    with pytest.raises(TypeError, match="revision"):
        store.transition(created.id, State.REJECTED, actor="U", action="rejected", revision=9)


def test_listings(store: Store) -> None:
    """open_requests lists pending and active ones by id; in_states filters by state."""
    pending = new(store, vm_uuid="vm-1")
    approved = approve(store, new(store, vm_uuid="vm-2").id)
    rejected = store.transition(
        new(store, vm_uuid="vm-3").id, State.REJECTED, actor="U_LEAD", action="rejected"
    )
    assert approved is not None and rejected is not None
    assert [r.id for r in store.open_requests()] == [pending.id, approved.id]
    assert [r.id for r in store.in_states(State.REJECTED, State.APPROVED)] == [
        approved.id,
        rejected.id,
    ]
    assert store.in_states() == []


def test_recent_finished(store: Store, clock: ManualClock) -> None:
    """recent_finished lists finished requests, most recently changed first, up to the limit."""
    ids = []
    for n in range(12):
        clock.advance(1)
        request = new(store, vm_uuid=f"vm-{n}")
        store.transition(request.id, State.EXPIRED, actor="bot", action="expired")
        ids.append(request.id)
    new(store, vm_uuid="vm-open")
    assert [r.id for r in store.recent_finished()] == ids[::-1][:10]
    assert [r.id for r in store.recent_finished(limit=3)] == ids[::-1][:3]


def test_by_vm(store: Store) -> None:
    """by_vm finds the VM's active request before a newer pending one, and ignores finished ones."""
    assert store.by_vm("vm-1") is None
    old = new(store)
    store.transition(old.id, State.CANCELLED, actor="U_REQ", action="cancelled")
    assert store.by_vm("vm-1") is None
    first = new(store)
    second = new(store)
    assert store.by_vm("vm-1") == second
    approve(store, first.id)
    found = store.by_vm("vm-1")
    assert found is not None and found.id == first.id


# Transitions: compare-and-set


def test_transition_applies_changes(store: Store, clock: ManualClock) -> None:
    """A transition sets the state and the given fields, bumps the revision and is audited."""
    created = new(store)
    clock.advance(5)
    moved = store.transition(
        created.id,
        State.APPROVED,
        actor="U_LEAD",
        action="approved",
        details={"checks": "re-run"},
        approved_by="U_LEAD",
        approved_at=clock.now(),
    )
    assert moved is not None
    assert moved.state is State.APPROVED
    assert (moved.approved_by, moved.approved_at) == ("U_LEAD", clock.now())
    assert moved.revision == created.revision + 1
    assert moved.updated_at == clock.now() != moved.created_at
    event = store.audit_events(request_id=created.id)[-1]
    assert (event.actor, event.action, event.details) == (
        "U_LEAD",
        "approved",
        {"checks": "re-run"},
    )
    assert event.at == clock.now()


def test_concurrent_approvals_one_wins(store: Store) -> None:
    """Twenty approvers pressing at once: one gets the request, the others None, one audit row."""
    created = new(store)
    results = race(lambda i: approve(store, created.id, actor=f"U_LEAD{i}"))
    winners = [r for r in results if isinstance(r, Request)]
    assert len(winners) == 1
    assert results.count(None) == THREADS - 1
    assert actions(store, created.id).count("approved") == 1
    final = store.get(created.id)
    assert final is not None and final.revision == 2
    assert final.approved_by == winners[0].approved_by


def test_second_approval_returns_none(store: Store) -> None:
    """Approving an already approved request returns None and writes nothing."""
    created = new(store)
    first = approve(store, created.id)
    assert approve(store, created.id, actor="U_OTHER") is None
    assert store.get(created.id) == first
    assert actions(store) == ["created", "approved"]


def test_expect_narrows_the_compare(store: Store) -> None:
    """With `expect`, a request in another allowed source state is left alone."""
    created = new(store)
    assert (
        store.transition(
            created.id, State.CANCELLED, actor="U", action="cancelled", expect=[State.QUEUED]
        )
        is None
    )
    assert (
        store.transition(
            created.id, State.CANCELLED, actor="U", action="cancelled", expect=[State.PENDING]
        )
        is not None
    )


def test_unknown_request_transition(store: Store) -> None:
    """A transition of an unknown id returns None."""
    assert approve(store, 999) is None


@pytest.mark.parametrize(
    ("to", "expect"),
    [
        (State.RUNNING, [State.PENDING]),  # running without approval
        (State.QUEUED, [State.APPROVED, State.PENDING]),  # one bad source spoils the set
        (State.PENDING, None),  # nothing moves back to pending
        (State.APPROVED, []),  # expecting nothing is a bug, not a lost race
    ],
)
def test_illegal_transition_touches_nothing(
    store: Store, to: State, expect: list[State] | None
) -> None:
    """A move the table forbids raises IllegalTransition and leaves the database unchanged."""
    created = new(store)
    with pytest.raises(IllegalTransition):
        store.transition(created.id, to, actor="U", action="x", expect=expect)
    assert store.get(created.id) == created
    assert actions(store) == ["created"]


def test_transition_is_one_transaction(store: Store) -> None:
    """When the audit row cannot be written, the state change is rolled back with it."""
    created = new(store)
    with pytest.raises(sa.exc.IntegrityError):
        store.transition(created.id, State.APPROVED, actor=None, action="approved")  # type: ignore[arg-type]
    assert store.get(created.id) == created


def test_update(store: Store, clock: ManualClock) -> None:
    """update changes other fields, bumping the revision only when asked."""
    created = new(store)
    clock.advance(1)
    posted = store.update(created.id, message_ts="1.0001", thread_ts="1.0001")
    assert (posted.message_ts, posted.revision, posted.updated_at) == ("1.0001", 1, clock.now())
    edited = store.update(created.id, bump=True, plan={"call": "migrate_send"})
    assert (edited.plan, edited.revision) == ({"call": "migrate_send"}, 2)
    tagged = store.update(created.id, tags_added=("xo:no-bak=migrate-bot #1",), error=None)
    assert tagged.tags_added == ("xo:no-bak=migrate-bot #1",)
    with pytest.raises(KeyError):
        store.update(999, message_ts="x")


# One active request per VM


def test_vm_busy(store: Store) -> None:
    """A second request for the VM may be pending, but cannot become active while one is."""
    first = new(store)
    assert approve(store, first.id) is not None
    second = new(store)
    assert second.state is State.PENDING
    with pytest.raises(VMBusy) as busy:
        approve(store, second.id)
    assert busy.value.request_id == first.id
    assert store.get(second.id) == second
    assert actions(store, second.id) == ["created"]


@pytest.mark.parametrize("state", sorted(ACTIVE))
def test_every_active_state_holds_the_vm(store: Store, state: State) -> None:
    """A request in any ACTIVE state blocks another one from becoming active."""
    holder = new(store, state=state)
    with pytest.raises(VMBusy) as busy:
        approve(store, new(store).id)
    assert busy.value.request_id == holder.id


@pytest.mark.parametrize("state", sorted(FINISHED | {State.PENDING}))
def test_other_states_do_not_hold_the_vm(store: Store, state: State) -> None:
    """Pending and finished requests leave the VM free for another one."""
    new(store, state=state)
    assert approve(store, new(store).id) is not None


def test_create_active_on_busy_vm(store: Store) -> None:
    """Filing a request directly in an ACTIVE state on a held VM raises VMBusy, files nothing."""
    holder = new(store, state=State.QUEUED)
    with pytest.raises(VMBusy) as busy:
        new(store, state=State.APPROVED)
    assert busy.value.request_id == holder.id
    assert [r.id for r in store.open_requests()] == [holder.id]


def test_holder_moves_and_releases(store: Store) -> None:
    """The holder moves between ACTIVE states freely, and frees the VM when it finishes."""
    first = new(store)
    approve(store, first.id)
    second = new(store)
    for to in (State.QUEUED, State.RUNNING, State.FAILED):
        assert store.transition(first.id, to, actor="bot", action=to.value) is not None
    assert approve(store, second.id) is not None


def test_concurrent_approvals_of_one_vm(store: Store) -> None:
    """Twenty requests for one VM approved at once: one becomes active, the rest get VMBusy."""
    ids = [new(store).id for _ in range(THREADS)]
    results = race(lambda i: approve(store, ids[i]))
    [winner] = [r for r in results if isinstance(r, Request)]
    busy = [r for r in results if isinstance(r, VMBusy)]
    assert len(busy) == THREADS - 1
    assert {error.request_id for error in busy} == {winner.id}
    assert [r.id for r in store.in_states(*ACTIVE)] == [winner.id]


# Audit


def test_audit_events_filters(store: Store, clock: ManualClock) -> None:
    """audit_events returns events in order, from a time on, for one request or all."""
    first = new(store)
    clock.advance(10)
    later = clock.now()
    second = new(store, vm_uuid="vm-2")
    free = store.audit(None, "U_LEAD", "restart_toolstack", {"host": "host1"})
    assert (free.request_id, free.at, free.details) == (None, later, {"host": "host1"})
    assert [e.request_id for e in store.audit_events()] == [first.id, second.id, None]
    assert [e.request_id for e in store.audit_events(since=later)] == [second.id, None]
    assert [e.id for e in store.audit_events(since=later, request_id=second.id)] == [
        store.audit_events()[1].id
    ]
    assert store.audit_events(since=later + 1) == []


# Steps


def test_begin_step_once(store: Store, clock: ManualClock) -> None:
    """A step attempt is begun once; beginning it again returns None, a new attempt is allowed."""
    request = new(store)
    step = store.begin_step(request.id, "migrate")
    assert step is not None
    assert (step.state, step.position, step.attempt, step.progress) == ("issuing", 1, 1, 0.0)
    assert step.started_at == clock.now()
    assert store.begin_step(request.id, "migrate") is None
    retry = store.begin_step(request.id, "migrate", attempt=2)
    assert retry is not None and retry.position == 2
    assert [s.id for s in store.steps(request.id)] == [step.id, retry.id]


def test_concurrent_begin_step(store: Store) -> None:
    """Twenty threads beginning the same step: exactly one gets it."""
    request = new(store)
    results = race(lambda _: store.begin_step(request.id, "shutdown"))
    assert sum(result is not None for result in results) == 1
    assert not [r for r in results if isinstance(r, Exception)]


def test_step_lifecycle(store: Store, clock: ManualClock) -> None:
    """A step records its task, its progress with when it last moved, and how it ended."""
    request = new(store)
    step = store.begin_step(request.id, "migrate")
    assert step is not None
    clock.advance(1)
    running = store.step_task(step.id, "OpaqueRef:task-1")
    assert (running.state, running.task_ref) == ("running", "OpaqueRef:task-1")
    clock.advance(1)
    moved_at = clock.now()
    assert store.step_progress(step.id, 0.4).progressed_at == moved_at
    clock.advance(30)
    same = store.step_progress(step.id, 0.4)
    assert (same.progress, same.progressed_at) == (0.4, moved_at)
    clock.advance(1)
    ended = store.end_step(step.id, "failed", {"code": "VM_MIGRATE_FAILED"})
    assert (ended.state, ended.ended_at, ended.error) == (
        "failed",
        clock.now(),
        {"code": "VM_MIGRATE_FAILED"},
    )
    assert store.steps(request.id) == [ended]
    assert store.steps(999) == []


# Persistence and schema


def test_restart_sees_everything(url: str, clock: ManualClock) -> None:
    """A fresh Store on the same database sees requests, steps and audit, and ids go on."""
    before = Store(url, clock)
    try:
        request = approve(before, new(before).id)
        step = before.begin_step(1, "migrate")
        assert request is not None and step is not None
        before.step_task(step.id, "OpaqueRef:task-1")
        audit = before.audit_events()
    finally:
        before.close()
    after = Store(url, clock)
    try:
        assert after.get(request.id) == request
        assert [s.task_ref for s in after.steps(request.id)] == ["OpaqueRef:task-1"]
        assert after.begin_step(request.id, "migrate") is None
        assert after.audit_events() == audit
        assert new(after, vm_uuid="vm-2").id == request.id + 1
    finally:
        after.close()


def test_upgrade_is_idempotent(url: str, clock: ManualClock) -> None:
    """Building a Store on an up-to-date database changes nothing and keeps one version row."""
    first = Store(url, clock)
    second = Store(url, clock)
    try:
        new(first)
        assert second.get(1) is not None
    finally:
        first.close()
        second.close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    finally:
        engine.dispose()
    assert [tuple(v) for v in versions] == [(HEAD,)]


def test_upgrade_rekeys_stored_disk_plans_by_userdevice(url: str, clock: ManualClock) -> None:
    """A request filed by an older bot (disk plan keyed by VDI uuid) is carried across the
    upgrade keyed by its disks' places in the VM, read from the summary's labels."""
    engine = sa.create_engine(url)
    old_plan = {
        "intent": {"disk_srs": {"vdi-uuid-a": "sr-1", "vdi-uuid-b": "sr-2"}, "mode": "live"},
        "summary": {"disks": [{"label": "0 (xvda, 'root')"}, {"label": "2 (xvdc, 'data')"}]},
    }
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic(conn), "0003")
            conn.execute(
                sa.insert(METADATA.tables["requests"]),
                {**ROW, "plan": old_plan, "tags_added": []},
            )
    finally:
        engine.dispose()
    store = Store(url, clock)
    try:
        intent = store.get(1).plan["intent"]
        assert intent["disk_srs"] == {"0": "sr-1", "2": "sr-2"} and intent["mode"] == "live"
    finally:
        store.close()


def test_migrations_match_the_tables(store: Store, url: str) -> None:
    """The schema the migrations build is the one the code declares (no missing revision)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), METADATA) == []
    finally:
        engine.dispose()


def test_ping(store: Store) -> None:
    """ping answers True while the database works."""
    assert store.ping() is True


def test_ping_false_when_unreachable(tmp_path: Path, clock: ManualClock) -> None:
    """ping answers False, not an exception, when the database cannot be opened."""
    path = tmp_path / "bot.db"
    store = Store(f"sqlite:///{path}", clock)
    try:
        store.close()
        path.rename(tmp_path / "moved.db")
        path.mkdir()
        assert store.ping() is False
    finally:
        store.close()


def test_sqlite_uses_wal(tmp_path: Path, clock: ManualClock) -> None:
    """The SQLite file is in WAL mode, so readers never block the writer."""
    path = tmp_path / "bot.db"
    Store(f"sqlite:///{path}", clock).close()
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()


def test_unshown_lists_messages_older_than_their_request(store: Store) -> None:
    """A request message counts as shown at the revision Slack last accepted; a later
    change (or a message never confirmed) makes it unshown, finished requests included."""
    unposted = new(store, vm_uuid="vm-0")  # no message yet: nothing to edit
    req = store.update(new(store).id, message_ts="1.0", thread_ts="1.0")
    assert [r.id for r in store.unshown()] == [req.id]
    store.shown(req.id, req.revision)
    assert store.unshown() == []
    moved = approve(store, req.id)
    assert moved is not None and [r.id for r in store.unshown()] == [req.id]
    store.shown(req.id, moved.revision)
    store.shown(req.id, req.revision)  # a slower, older edit never goes back
    assert store.unshown() == [] and store.get(req.id).shown_revision == moved.revision
    assert store.get(req.id).updated_at == moved.updated_at  # showing is not a change
    assert store.get(unposted.id).shown_revision is None


def test_replicas_starting_together_upgrade_the_schema_once(postgres_url: str) -> None:
    """Two stores opened at once on an empty PostgreSQL: one upgrades, the other waits
    for it and finds the schema at head (no duplicate table or type)."""
    barrier = Barrier(4)

    def open_store(_: int) -> str:
        barrier.wait()
        Store(postgres_url, ManualClock()).close()
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_store, range(4), timeout=60)) == ["ok"] * 4
