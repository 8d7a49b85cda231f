"""Alerts fixtures: the notify suite's recording receiver (databases come from tests.support.databases)."""

from __future__ import annotations

from tests.notify.conftest import recorder

__all__ = ["recorder"]
