"""The SQLAlchemy store of requests, steps and audit events, and its Alembic migrations.
May import the shared ground only.
"""
