"""Alembic's environment: runs the revisions on the Connection `hub.db.migrate` hands over.

No alembic.ini and no URL of its own: the caller has opened the hub's database and taken the migration
lock on that connection, so the revisions must run on it (`config.attributes["connection"]`).
`target_metadata` is not given on purpose: Alembic would apply METADATA's naming convention to the
baseline's unnamed constraints, and a fresh database would differ from one made before Alembic.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("hub migrations run on a live connection: use `outpost-hub db upgrade`")
# Batch mode: SQLite cannot ALTER most things, so Alembic rebuilds the table there (a no-op elsewhere).
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
