"""Alerts fixtures: the notify suite's databases (SQLite file, real PostgreSQL) and recording receiver."""

from __future__ import annotations

from tests.notify.conftest import db_url, postgres, recorder

__all__ = ["db_url", "postgres", "recorder"]
