"""The hub's database as the hub opens it: one engine, migrated to head (what `Hub.start` does)."""

from __future__ import annotations

import sqlalchemy as sa

from hub.db import migrate
from hub.db.engine import create_engine

# The newest migration, named once for every test that checks where a database ended up: a new
# migration changes it here (and `migrate.head()` must agree, tests/db/test_migrations.py checks).
HEAD = "0014_alert_indexes_unused"


def migrated_engine(url: str) -> sa.Engine:
    """An engine on `url` whose schema `hub.db.migrate.upgrade` has brought to head."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    return engine
