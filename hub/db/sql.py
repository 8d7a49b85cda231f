"""Statements several packages need on both SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(db: sa.Connection, table: sa.Table, **values: object) -> bool:
    """INSERT unless the primary key exists (no check-then-insert race); True when a row was added."""
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    # RETURNING rather than rowcount: drivers disagree on rowcount for a skipped conflicting row.
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(sa.literal_column("1"))
    return db.execute(stmt).first() is not None
