"""Statements several packages need on both SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from typing import Any

import orjson
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


@functools.lru_cache(maxsize=256)
def _driver_plan(
    stmt: sa.Insert | sa.Update, keys: tuple[str, ...], dialect: sa.Dialect
) -> tuple[str, tuple[tuple[str, bool], ...], bool] | None:
    """`stmt` compiled once for rows with these keys: (SQL, (bind name, is JSON) in parameter order,
    positional); None when the driver's paramstyle or the binds are not ones `executemany` can feed."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    table = stmt.table
    assert isinstance(table, sa.Table)
    json_cols = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
    if dialect.paramstyle == "qmark":
        names = tuple(compiled.positiontup or ())
        positional = True
    elif dialect.paramstyle == "pyformat":
        names = tuple(compiled.binds)
        positional = False
    else:
        return None
    if not names or not set(names) <= set(keys):
        return None
    return compiled.string, tuple((n, n in json_cols) for n in names), positional


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def executemany(conn: sa.Connection, stmt: sa.Insert | sa.Update, rows: list[dict[str, Any]]) -> int:
    """Runs `stmt` for every row through the driver directly; the rows affected.

    The per-row work SQLAlchemy does in `execute` (building each parameter set, a bind processor call per
    value) was most of a step's write: here the statement is compiled once per key set and JSON columns
    are encoded by orjson (what SQLAlchemy's JSON type reads back is the same value; the text differs
    only in spacing and in not escaping non-ASCII); nothing else of these tables needs a bind processor
    on SQLite or psycopg (booleans and integers go to the driver as they are).
    """
    plan = _driver_plan(stmt, tuple(rows[0]), conn.dialect)
    if plan is None:
        return int(conn.execute(stmt, rows).rowcount)
    sql, binds, positional = plan
    dumps = _json_text
    if positional:
        params: list[Any] = [tuple(dumps(r[n]) if j else r[n] for n, j in binds) for r in rows]
    else:
        params = [{n: dumps(r[n]) if j else r[n] for n, j in binds} for r in rows]
    return int(conn.exec_driver_sql(sql, params).rowcount)
