"""Alembic migrations of the hub's database (run through `hub.db.migrate`, never by hand on a live hub)."""
