"""SQLAlchemy schema and records, the store, Alembic migrations.
May import the shared ground only.
"""
