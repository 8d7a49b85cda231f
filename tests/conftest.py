"""Suite-wide fixtures: a running hub process per test that asks for one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis.reporting.html.writer  # noqa: F401 - imported now, see below
import schemathesis.reporting.junitxml  # noqa: F401

from tests.support.outpost import HubHandle, start_hub

# CPython 3.11.7 can raise "SystemError: AST constructor recursion depth mismatch" from an ast.parse
# late in a session (python/cpython#106905, fixed in later releases). The schemathesis plugin imports its
# report writers at session finish, each one parsed then by pytest's assertion rewriter, so a run whose
# tests all passed could end in that error: the writers are imported here, first, and allure's (its
# package is not installed) is marked absent so that it is not looked for again.
sys.modules.setdefault("schemathesis.reporting.allure", None)  # type: ignore[arg-type]

# Suite-wide database fixtures (`postgres`, `state_url`), defined once.
pytest_plugins = ["tests.support.databases"]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubHandle]:
    """A real `outpost-hub run` on free ports with an embedded store under tmp_path."""
    h = start_hub(tmp_path)
    try:
        yield h
    finally:
        h.stop()
