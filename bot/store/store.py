"""The durable record: requests, the steps each run issued, and the audit log.

SQLAlchemy Core on a SQLite file by default, PostgreSQL alike. The schema belongs to
Alembic (`bot/store/migrations/`) and is upgraded whenever a `Store` is built, so a new version
of the bot carries in-flight requests across.

Three guarantees the engine builds on:

- A state change is a compare-and-set, `UPDATE … WHERE id = ? AND state IN (…)`, with its
  audit row in the same transaction: no row matched means someone else moved first, and
  nothing at all is written.
- A partial unique index lets one VM have at most one ACTIVE request; a move that would
  break it raises `VMBusy` naming the holder.
- UNIQUE(request, step, attempt): a step row is written before its XAPI call, so after a
  restart the bot re-attaches to that step instead of issuing it twice.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.clock import Clock
from bot.models import Mode, ShutdownKind
from bot.states import ACTIVE, FINISHED, OPEN, IllegalTransition, State, can, sources
from bot.store.records import AuditEvent, Request, Step, StepState, VMBusy
from bot.store.schema import ACTIVE_VALUES, AUDIT, FINISHED_VALUES, REQUESTS, STEPS
from bot.store.schema_status import MIGRATIONS, open_read_only

# How long a SQLite writer waits for another one's lock before giving up.
SQLITE_BUSY_TIMEOUT = 30.0

# PostgreSQL: the schema is upgraded by one replica at a time (a transaction-level
# advisory lock, released at commit); the others then find it at head.
SCHEMA_LOCK = 0x6D62_7363_6865_6D61  # "mbschema"
# Columns only the store writes: the state moves through `transition` alone.
_STORE_OWNED = frozenset({"id", "state", "revision", "created_at", "updated_at", "shown_revision"})
_SETTABLE = frozenset(REQUESTS.c.keys()) - _STORE_OWNED


class Store:
    def __init__(self, url: str, clock: Clock, *, read_only: bool = False) -> None:
        """`read_only` (`migrate-bot audit`): no upgrade and no writes, and DatabaseProblem
        unless the schema is this code's."""
        self._clock = clock
        self._pool: str | None = None  # a pool's view (`for_pool`): its scans, its filings
        if read_only:
            self._engine = open_read_only(url)
            return
        self._engine = _engine(url)
        try:
            with self._write() as conn:
                if conn.dialect.name == "postgresql":  # replicas starting together: one
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        self._engine.dispose()

    def for_pool(self, pool: str) -> Store:
        """The store as one pool's engine sees it: it files requests in `pool` and its scans
        (`in_states`) find that pool's requests only; one database underneath."""
        view = copy.copy(self)
        view._pool = pool
        return view

    def ping(self) -> bool:
        """Readiness: the database answers a query on our schema."""
        try:
            with self._read() as conn:
                conn.execute(sa.select(REQUESTS.c.id).limit(1))
        except SQLAlchemyError:
            return False
        return True

    # Requests

    def create_request(
        self,
        *,
        requester: str,
        command_text: str,
        vm_uuid: str,
        vm_name: str,
        dest_host_uuid: str,
        dest_host_name: str,
        mode: Mode,
        plan: Mapping[str, Any],
        shutdown: ShutdownKind = "clean",
        state: State = State.PENDING,
        **optional: Any,
    ) -> Request:
        """File a request (PENDING unless told) and its `created` audit row, together."""
        _check_settable(optional)
        now = self._clock.now()
        values = {
            "tags_added": [],
            **optional,
            "state": state.value,
            "revision": 1,
            "created_at": now,
            "updated_at": now,
            "requester": requester,
            "command_text": command_text,
            "vm_uuid": vm_uuid,
            "vm_name": vm_name,
            "dest_host_uuid": dest_host_uuid,
            "dest_host_name": dest_host_name,
            "mode": mode,
            "shutdown": shutdown,
            "plan": dict(plan),
        }
        if self._pool is not None:
            values["pool"] = self._pool
        try:
            with self._write() as conn:
                if state in ACTIVE:
                    _raise_if_busy(conn, vm_uuid, None)
                request_id = _insert(conn, REQUESTS, values)
                details = {"vm": vm_name, "vm_uuid": vm_uuid, "to": dest_host_name, "mode": mode}
                _insert_audit(conn, request_id, now, requester, "created", details)
                return _load(conn, request_id)
        except IntegrityError:
            # PostgreSQL: a concurrent transaction took the VM after our check.
            if state in ACTIVE:
                self._raise_busy_after_conflict(vm_uuid, None)
            raise

    def approve_batch(
        self,
        batch_id: int,
        children: Iterable[Mapping[str, Any]],
        *,
        actor: str,
        details: Mapping[str, Any],
        **changes: Any,
    ) -> Request | None:
        """PENDING -> APPROVED for a batch, with a child request per move created held
        (APPROVED, `batch_id` set) in the same transaction: each holds its VM from now on.

        None when the batch was no longer pending; VMBusy (naming the VM) when another
        request holds one of the VMs, and then nothing is written."""
        _check_settable(changes)
        now = self._clock.now()
        pending = [State.PENDING.value]
        with self._write() as conn:
            batch = conn.execute(
                sa.select(REQUESTS).where(REQUESTS.c.id == batch_id, REQUESTS.c.state.in_(pending))
            ).first()
            if batch is None:
                return None
            _raise_if_busy(conn, batch.vm_uuid, batch_id)  # an evacuation holds its host
            for child in children:
                _check_settable(child)
                try:
                    _raise_if_busy(conn, child["vm_uuid"], None)
                except VMBusy as busy:
                    raise VMBusy(busy.request_id, child["vm_name"]) from None
                values = {
                    "tags_added": [],
                    **child,
                    "state": State.APPROVED.value,
                    "revision": 1,
                    "created_at": now,
                    "updated_at": now,
                    "requester": batch.requester,
                    "channel": batch.channel,
                    "thread_ts": batch.thread_ts,
                    "approved_by": actor,
                    "approved_at": now,
                    "batch_id": batch_id,
                    "pool": batch.pool,
                }
                child_id = _insert(conn, REQUESTS, values)
                _insert_audit(conn, child_id, now, actor, "approved", {"batch": batch_id})
            values = {
                **changes,
                "state": State.APPROVED.value,
                "revision": REQUESTS.c.revision + 1,
                "updated_at": now,
            }
            conn.execute(sa.update(REQUESTS).where(REQUESTS.c.id == batch_id).values(values))
            _insert_audit(conn, batch_id, now, actor, "approved", details)
            return _load(conn, batch_id)

    def children(self, batch_id: int) -> list[Request]:
        """A batch's child requests, in the order they were created (the run order)."""
        query = sa.select(REQUESTS).where(REQUESTS.c.batch_id == batch_id)
        return self._requests(query.order_by(REQUESTS.c.id))

    def get(self, request_id: int) -> Request | None:
        with self._read() as conn:
            row = conn.execute(sa.select(REQUESTS).where(REQUESTS.c.id == request_id)).first()
        return None if row is None else _request(row)

    def by_vm(self, vm_uuid: str) -> Request | None:
        """The VM's active request, else its newest pending one."""
        is_active = sa.case((REQUESTS.c.state.in_(ACTIVE_VALUES), 1), else_=0)
        query = (
            _select_in(OPEN)
            .where(REQUESTS.c.vm_uuid == vm_uuid)
            .order_by(is_active.desc(), REQUESTS.c.id.desc())
            .limit(1)
        )
        found = self._requests(query)
        return found[0] if found else None

    def latest_for(self, vm_uuid: str) -> Request | None:
        """The newest request for `vm_uuid`, in any state."""
        query = sa.select(REQUESTS).where(REQUESTS.c.vm_uuid == vm_uuid)
        found = self._requests(query.order_by(REQUESTS.c.id.desc()).limit(1))
        return found[0] if found else None

    def last_channel(self, requester: str) -> str | None:
        """The channel of `requester`'s newest request: where the shortcut's form posts
        unless they choose another."""
        query = (
            sa.select(REQUESTS.c.channel)
            .where(REQUESTS.c.requester == requester, REQUESTS.c.channel.is_not(None))
            .order_by(REQUESTS.c.id.desc())
            .limit(1)
        )
        with self._read() as conn:
            return conn.execute(query).scalar()

    def open_requests(self) -> list[Request]:
        return self.in_states(*OPEN)

    def recent_finished(self, limit: int = 10) -> list[Request]:
        """The last `limit` finished requests, most recently changed first."""
        order = (REQUESTS.c.updated_at.desc(), REQUESTS.c.id.desc())
        return self._requests(_select_in(FINISHED).order_by(*order).limit(limit))

    def count_by_state(self) -> dict[str, int]:
        query = sa.select(REQUESTS.c.state, sa.func.count()).group_by(REQUESTS.c.state)
        with self._read() as conn:
            return {str(state): int(n) for state, n in conn.execute(query)}

    def oldest_pending_age(self) -> float:
        """Seconds the oldest PENDING request has waited (0 when none), for the alert on
        requests the expiry missed. One whose at= window is still ahead may rightly wait
        past the approval TTL (it expires at its window), so it is left out."""
        now = self._clock.now()
        query = sa.select(sa.func.min(REQUESTS.c.created_at)).where(
            REQUESTS.c.state == State.PENDING.value,
            sa.or_(REQUESTS.c.run_at.is_(None), REQUESTS.c.run_at <= now),
        )
        with self._read() as conn:
            oldest = conn.execute(query).scalar()
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def unannounced(self) -> list[Request]:
        """Requests whose news did not reach Slack: an end (or stuck) the thread was not
        told, or a request whose message was never posted."""
        told = sa.or_(REQUESTS.c.announced.is_(None), REQUESTS.c.announced != REQUESTS.c.state)
        ended = sa.and_(REQUESTS.c.state.in_([*FINISHED_VALUES, State.STUCK.value]), told)
        unposted = sa.and_(
            REQUESTS.c.state == State.PENDING.value,
            REQUESTS.c.message_ts.is_(None),
            REQUESTS.c.channel.is_not(None),
        )
        query = sa.select(REQUESTS).where(sa.or_(ended, unposted)).order_by(REQUESTS.c.id)
        return self._requests(query)

    def unshown(self) -> list[Request]:
        """Requests whose message in Slack is older than the request (an edit lost in a
        crash, or still queued at the last stop)."""
        stale = sa.or_(
            REQUESTS.c.shown_revision.is_(None), REQUESTS.c.shown_revision < REQUESTS.c.revision
        )
        query = sa.select(REQUESTS).where(REQUESTS.c.message_ts.is_not(None), stale)
        return self._requests(query.order_by(REQUESTS.c.id))

    def shown(self, request_id: int, revision: int) -> None:
        """Slack shows the request message at `revision` (not a change of the request:
        `updated_at` stays)."""
        newer = sa.or_(REQUESTS.c.shown_revision.is_(None), REQUESTS.c.shown_revision < revision)
        with self._write() as conn:
            conn.execute(
                sa.update(REQUESTS)
                .where(REQUESTS.c.id == request_id, newer)
                .values(shown_revision=revision)
            )

    def in_states(self, *states: State, changed_since: float | None = None) -> list[Request]:
        """Requests in `states`; with `changed_since`, only those changed since then (so a
        ticker's look at finished requests does not grow with the years)."""
        query = _select_in(states)
        if self._pool is not None:
            query = query.where(REQUESTS.c.pool == self._pool)
        if changed_since is not None:
            query = query.where(REQUESTS.c.updated_at >= changed_since)
        return self._requests(query.order_by(REQUESTS.c.id))

    def transition(
        self,
        request_id: int,
        to: State,
        *,
        actor: str,
        action: str,
        details: Mapping[str, Any] | None = None,
        expect: Iterable[State] | None = None,
        **changes: Any,
    ) -> Request | None:
        """Move the request to `to` if it is still in one of `expect` (default: any state
        the table lets move to `to`), apply `changes` and audit it, all or nothing.

        None means it was not in an expected state (someone else moved first, or no such
        request) and nothing was written. Raises IllegalTransition before touching the
        database, and VMBusy when `to` is ACTIVE and another request holds the VM.
        """
        expected = sources(to) if expect is None else frozenset(expect)
        forbidden = [current for current in expected if not can(current, to)]
        if forbidden or not expected:
            raise IllegalTransition(to, forbidden)
        _check_settable(changes)
        values = {
            **changes,
            "state": to.value,
            "revision": REQUESTS.c.revision + 1,
            "updated_at": self._clock.now(),
        }
        expected_values = [state.value for state in expected]
        try:
            with self._write() as conn:
                row = conn.execute(
                    sa.select(REQUESTS.c.vm_uuid).where(
                        REQUESTS.c.id == request_id, REQUESTS.c.state.in_(expected_values)
                    )
                ).first()
                if row is None:
                    return None
                if to in ACTIVE:
                    _raise_if_busy(conn, row.vm_uuid, request_id)
                moved = conn.execute(
                    sa.update(REQUESTS)
                    .where(REQUESTS.c.id == request_id, REQUESTS.c.state.in_(expected_values))
                    .values(values)
                )
                if moved.rowcount == 0:
                    return None
                _insert_audit(conn, request_id, values["updated_at"], actor, action, details)
                return _load(conn, request_id)
        except IntegrityError:
            # PostgreSQL: a concurrent transaction took the VM after our check.
            if to in ACTIVE and (current := self.get(request_id)) is not None:
                self._raise_busy_after_conflict(current.vm_uuid, request_id)
            raise

    def update(self, request_id: int, *, bump: bool = False, **changes: Any) -> Request:
        """Change fields other than the state; `bump` when the request message changed,
        so buttons on the old message are refused as out of date."""
        _check_settable(changes)
        values: dict[str, Any] = {**changes, "updated_at": self._clock.now()}
        if bump:
            values["revision"] = REQUESTS.c.revision + 1
        with self._write() as conn:
            query = sa.update(REQUESTS).where(REQUESTS.c.id == request_id).values(values)
            if conn.execute(query).rowcount == 0:
                raise KeyError(request_id)
            return _load(conn, request_id)

    def claim(
        self,
        request_id: int,
        revision: int,
        state: State,
        *,
        actor: str,
        action: str,
        details: Mapping[str, Any] | None = None,
    ) -> Request | None:
        """Bump the revision if the request is still at `revision` in `state`, and audit it.

        The one press on a message that wins: a second press on the same message, or a
        press on an outdated one, matches no row and gets None.
        """
        now = self._clock.now()
        with self._write() as conn:
            moved = conn.execute(
                sa.update(REQUESTS)
                .where(
                    REQUESTS.c.id == request_id,
                    REQUESTS.c.revision == revision,
                    REQUESTS.c.state == state.value,
                )
                .values(revision=REQUESTS.c.revision + 1, updated_at=now)
            )
            if moved.rowcount == 0:
                return None
            _insert_audit(conn, request_id, now, actor, action, details)
            return _load(conn, request_id)

    # Audit

    def audit(
        self,
        request_id: int | None,
        actor: str,
        action: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        now = self._clock.now()
        with self._write() as conn:
            event_id = _insert_audit(conn, request_id, now, actor, action, details)
            row = conn.execute(sa.select(AUDIT).where(AUDIT.c.id == event_id)).one()
        return AuditEvent(**row._mapping)

    def audit_events(
        self, since: float | None = None, request_id: int | None = None
    ) -> list[AuditEvent]:
        """Events at or after `since`, of one request or all, in the order they happened."""
        query = sa.select(AUDIT).order_by(AUDIT.c.id)
        if since is not None:
            query = query.where(AUDIT.c.at >= since)
        if request_id is not None:
            query = query.where(AUDIT.c.request_id == request_id)
        with self._read() as conn:
            return [AuditEvent(**row._mapping) for row in conn.execute(query)]

    # Steps

    def measured_throughput(self, recent: int = 10) -> float | None:
        """The median copy rate (MB/s) of the last `recent` storage migrations, if any."""
        query = (
            sa.select(AUDIT.c.details)
            .where(AUDIT.c.action == "throughput")
            .order_by(AUDIT.c.id.desc())
            .limit(recent)
        )
        with self._read() as conn:
            rates = [row.details["mbps"] for row in conn.execute(query)]
        return statistics.median(rates) if rates else None

    def begin_step(self, request_id: int, name: str, attempt: int = 1) -> Step | None:
        """Record a step as "issuing" before its XAPI call. None: this attempt of the step
        was already begun (before a restart, say), so re-attach to it, never reissue."""
        now = self._clock.now()
        try:
            with self._write() as conn:
                last = sa.func.coalesce(sa.func.max(STEPS.c.position), 0)
                where = STEPS.c.request_id == request_id
                position = conn.execute(sa.select(last).where(where)).scalar_one() + 1
                values = {
                    "request_id": request_id,
                    "position": position,
                    "name": name,
                    "attempt": attempt,
                    "state": "issuing",
                    "started_at": now,
                    "progressed_at": now,
                    "progress": 0.0,
                }
                step_id = _insert(conn, STEPS, values)
                return _step(conn.execute(sa.select(STEPS).where(STEPS.c.id == step_id)).one())
        except IntegrityError:
            if self._has_step(request_id, name, attempt):
                return None
            raise

    def step_task(self, step_id: int, task_ref: str) -> Step:
        """The XAPI call returned its task: the step is running and can be re-attached."""
        return self._update_step(step_id, task_ref=task_ref, state="running")

    def step_progress(self, step_id: int, progress: float) -> Step:
        moved = STEPS.c.progress != progress
        now = self._clock.now()
        return self._update_step(
            step_id,
            progress=progress,
            progressed_at=sa.case((moved, now), else_=STEPS.c.progressed_at),
        )

    def end_step(
        self, step_id: int, state: StepState, error: Mapping[str, Any] | None = None
    ) -> Step:
        error_value = None if error is None else dict(error)
        return self._update_step(
            step_id, state=state, ended_at=self._clock.now(), error=error_value
        )

    def steps(self, request_id: int) -> list[Step]:
        query = sa.select(STEPS).where(STEPS.c.request_id == request_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(STEPS.c.position, STEPS.c.id))
            return [_step(row) for row in rows]

    # Plumbing

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A transaction that takes SQLite's write lock at BEGIN (see `_engine`)."""
        with self._engine.connect() as conn:
            conn.execution_options(write=True)
            with conn.begin():
                yield conn

    def _requests(self, query: sa.Select[Any]) -> list[Request]:
        with self._read() as conn:
            return [_request(row) for row in conn.execute(query)]

    def _raise_busy_after_conflict(self, vm_uuid: str, request_id: int | None) -> None:
        with self._read() as conn:
            _raise_if_busy(conn, vm_uuid, request_id)

    def _has_step(self, request_id: int, name: str, attempt: int) -> bool:
        query = sa.select(STEPS.c.id).where(
            STEPS.c.request_id == request_id, STEPS.c.name == name, STEPS.c.attempt == attempt
        )
        with self._read() as conn:
            return conn.execute(query).first() is not None

    def _update_step(self, step_id: int, **values: Any) -> Step:
        with self._write() as conn:
            query = sa.update(STEPS).where(STEPS.c.id == step_id).values(values)
            if conn.execute(query).rowcount == 0:
                raise KeyError(step_id)
            return _step(conn.execute(sa.select(STEPS).where(STEPS.c.id == step_id)).one())


def _engine(url: str) -> sa.Engine:
    """An engine; on SQLite one that several threads can write through.

    pysqlite's own transaction handling begins a transaction only at the first write, so
    a read-then-write in WAL mode can fail at once with "database is locked" when another
    writer committed in between. We emit BEGIN ourselves instead: BEGIN IMMEDIATE for
    writes, so writers queue on the busy timeout from the start, plain BEGIN for reads,
    which WAL never blocks.
    """
    if sa.make_url(url).get_backend_name() != "sqlite":
        return sa.create_engine(url)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT}
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _check_settable(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - _SETTABLE
    if unknown:
        raise TypeError(f"not settable request fields: {', '.join(sorted(unknown))}")


def _select_in(states: Iterable[State]) -> sa.Select[Any]:
    return sa.select(REQUESTS).where(REQUESTS.c.state.in_([state.value for state in states]))


def _raise_if_busy(conn: sa.Connection, vm_uuid: str, request_id: int | None) -> None:
    """Raise VMBusy if a request other than `request_id` holds the VM."""
    query = sa.select(REQUESTS.c.id).where(
        REQUESTS.c.vm_uuid == vm_uuid, REQUESTS.c.state.in_(ACTIVE_VALUES)
    )
    if request_id is not None:
        query = query.where(REQUESTS.c.id != request_id)
    holder = conn.execute(query).scalar()
    if holder is not None:
        raise VMBusy(holder)


def _insert_audit(
    conn: sa.Connection,
    request_id: int | None,
    at: float,
    actor: str,
    action: str,
    details: Mapping[str, Any] | None,
) -> int:
    values = {
        "request_id": request_id,
        "at": at,
        "actor": actor,
        "action": action,
        "details": dict(details or {}),
    }
    return _insert(conn, AUDIT, values)


def _insert(conn: sa.Connection, table: sa.Table, values: Mapping[str, Any]) -> int:
    """Insert one row and return its id."""
    return conn.execute(sa.insert(table).values(values)).inserted_primary_key[0]


def _load(conn: sa.Connection, request_id: int) -> Request:
    return _request(conn.execute(sa.select(REQUESTS).where(REQUESTS.c.id == request_id)).one())


def _request(row: sa.Row[Any]) -> Request:
    fields = row._asdict()
    fields["state"] = State(fields["state"])
    fields["tags_added"] = tuple(fields["tags_added"])
    return Request(**fields)


def _step(row: sa.Row[Any]) -> Step:
    return Step(**row._asdict())
