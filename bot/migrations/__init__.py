"""Alembic migrations of the store's schema, run by `bot.store.Store` on start-up."""
