"""Refresh-token rotation on SQLite and PostgreSQL: each token works once, a reused one ends the whole
session, and of concurrent refreshes with one token exactly one wins (the rest count as reuse)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.auth.sessions import RefreshOutcome, Sessions
from hub.db.engine import create_engine
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

NOW = 1_800_000_000_000
DAY_MS = 86_400_000


def test_a_refresh_token_rotates_once_and_its_reuse_revokes_the_family(state_url: str) -> None:
    engine = migrated_engine(state_url)
    try:
        sessions = Sessions(engine)
        sid, first = sessions.start("u1", NOW, DAY_MS)
        second = sessions.rotate(first, NOW + 1)
        assert (second.outcome, second.session_id, second.user_id) == (RefreshOutcome.ROTATED, sid, "u1")
        assert second.refresh_token is not None and second.refresh_token != first
        third = sessions.rotate(second.refresh_token, NOW + 2)
        assert third.outcome is RefreshOutcome.ROTATED and sessions.is_live(sid, NOW + 3)
        assert sessions.rotate(first, NOW + 4).outcome is RefreshOutcome.REUSED  # a stolen copy
        assert not sessions.is_live(sid, NOW + 5)
        assert third.refresh_token is not None
        assert sessions.rotate(third.refresh_token, NOW + 6).outcome is RefreshOutcome.ENDED
        assert sessions.rotate("opr_never-issued", NOW).outcome is RefreshOutcome.UNKNOWN
    finally:
        engine.dispose()


def test_a_session_ends_at_its_lifetime_and_on_revocation(state_url: str) -> None:
    engine = migrated_engine(state_url)
    try:
        sessions = Sessions(engine)
        sid, token = sessions.start("u1", NOW, DAY_MS)
        assert sessions.rotate(token, NOW + DAY_MS).outcome is RefreshOutcome.ENDED
        other, _ = sessions.start("u1", NOW, DAY_MS)
        kept, _ = sessions.start("u1", NOW, DAY_MS)
        assert sessions.revoke_user("u1", "password_changed", NOW + 1, keep=kept) == 2
        assert (sessions.is_live(other, NOW + 2), sessions.is_live(kept, NOW + 2)) == (False, True)
        assert sessions.revoke(kept, "logout", NOW + 3) and not sessions.revoke(kept, "logout", NOW + 4)
    finally:
        engine.dispose()


def test_concurrent_refreshes_with_one_token_from_two_processes_let_exactly_one_win(state_url: str) -> None:
    engines = [migrated_engine(state_url), create_engine(state_url)]
    try:
        stores = [Sessions(e) for e in engines]
        sid, token = stores[0].start("u1", NOW, DAY_MS)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: stores[i % 2].rotate(token, NOW + 1), range(8)))
        outcomes = sorted(r.outcome.value for r in results)
        assert outcomes == ["reused"] * 7 + ["rotated"]
        assert not stores[1].is_live(sid, NOW + 2)  # the reuse ended the family, the winner's token too
    finally:
        for e in engines:
            e.dispose()
