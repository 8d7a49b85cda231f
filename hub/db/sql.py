"""Statements several packages need on both SQLite and PostgreSQL."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(db: sa.Connection, table: sa.Table, **values: object) -> bool:
    """INSERT unless the primary key exists (no check-then-insert race); True when a row was added."""
    return db.execute(_insert_ignore(db.dialect.name, table), values).first() is not None


@functools.cache
def _insert_ignore(dialect_name: str, table: sa.Table) -> sa.Insert:
    """The statement, built once per dialect and table (the values come as parameters): building and
    keying a statement per call cost more than running it, on a path every ingested batch takes."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    # RETURNING rather than rowcount: drivers disagree on rowcount for a skipped conflicting row.
    return dialect.insert(table).on_conflict_do_nothing().returning(sa.literal_column("1"))
