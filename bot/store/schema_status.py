"""Where a database's schema stands against this code, found without changing anything.

Opening a `Store` upgrades the schema (Alembic). Commands that only read must not:
`migrate-bot check-config` reports where the schema stands, and `migrate-bot audit` reads
through an engine that cannot write, and only a schema at this code's head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.errors import UserError
from bot.logs import shown_url

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseProblem(UserError):
    """The database cannot be read as this code needs: one line, what is wrong and what to do."""


@dataclass(frozen=True)
class Schema:
    """The database's Alembic revision (None: no schema yet) and this code's."""

    current: str | None
    head: str
    known: bool  # `current` is one of this code's revisions

    @property
    def behind(self) -> bool:
        """Older than the code: the next `migrate-bot run` upgrades it."""
        return self.current is not None and self.known and self.current != self.head

    @property
    def ahead(self) -> bool:
        """Written by a newer migrate-bot: this code cannot use it."""
        return self.current is not None and not self.known

    @property
    def compared(self) -> str:
        """How a schema ahead or behind differs, in words, for a line that says what to do."""
        age = "newer" if self.ahead else "older"
        return f"its schema (revision {self.current}) is {age} than this version's ({self.head})"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None: another database, or SQLite in memory)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def read_only_engine(url: str) -> sa.Engine:
    """An engine that cannot write on the store's databases: SQLite opens the file
    read-only, PostgreSQL runs every transaction READ ONLY. Raises DatabaseProblem for a
    URL that names no database."""
    try:
        parsed = sa.make_url(url)
        path = sqlite_file(url)
        if path is not None:
            ro = f"file:{quote(str(path))}"
            ro_url = parsed.set(database=ro).update_query_dict({"mode": "ro", "uri": "true"})
            return sa.create_engine(ro_url)
        if parsed.get_backend_name() == "postgresql":
            return sa.create_engine(parsed, execution_options={"postgresql_readonly": True})
        return sa.create_engine(parsed)
    except sa.exc.ArgumentError:
        raise DatabaseProblem(
            "BOT_DATABASE_URL is not a database URL: e.g. sqlite:///migrate-bot.db or "
            "postgresql+psycopg://user:password@host/migrate_bot"
        ) from None


def schema_status(url: str) -> Schema:
    """Where the database's schema stands, read without writing (a missing SQLite file has
    no schema yet). Raises DatabaseProblem when the database cannot be reached."""
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head() or ""
    engine = read_only_engine(url)
    path = sqlite_file(url)
    try:
        if path is not None and not path.exists():
            return Schema(None, head, known=True)
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseProblem(f"database {shown_url(url)}: cannot connect ({reason})") from None
    finally:
        engine.dispose()
    known = current is None or current in {rev.revision for rev in script.walk_revisions()}
    return Schema(current, head, known)


def open_read_only(url: str) -> sa.Engine:
    """A read-only engine on a database whose schema is this code's; otherwise
    DatabaseProblem saying what to do (reading an older schema could misread it)."""
    schema = schema_status(url)
    where = f"database {shown_url(url)}"
    if schema.current is None:
        raise DatabaseProblem(
            f"{where} holds no migrate-bot schema: is BOT_DATABASE_URL the bot's?"
        )
    if schema.ahead:
        raise DatabaseProblem(f"{where}: {schema.compared}: use the version that wrote it")
    if schema.behind:
        raise DatabaseProblem(
            f"{where}: {schema.compared}: start this version's `migrate-bot run` once "
            "(it upgrades the schema as it starts), then try again"
        )
    return read_only_engine(url)
