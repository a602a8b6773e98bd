"""Alembic migrations of the store's schema, run by `bot.store.store.Store` on start-up."""
