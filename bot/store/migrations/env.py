"""Alembic's environment, configured in code: `Store` hands over its own connection.

There is no alembic.ini. A new revision is made the same way, e.g.
`alembic.command.revision(config, "message", autogenerate=True)` with a `Config` whose
`script_location` is this folder and whose `attributes["connection"]` is open.
"""

from __future__ import annotations

from alembic import context

from bot.store.schema import METADATA

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=METADATA,
    render_as_batch=True,  # SQLite alters a table by copying it
)
with context.begin_transaction():
    context.run_migrations()
