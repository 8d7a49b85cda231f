"""Hub state behaves the same on SQLite (embedded default) and on a real PostgreSQL (at scale).

Several hub workers share one PostgreSQL: batch counting must stay exact under concurrent, repeated
and out-of-order deliveries, and an enrollment token's use limit must hold under concurrent use.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.auth.keys import ApiKeys
from hub.db.engine import create_engine
from hub.fleet.agents import Fleet
from hub.identity.db import EnrollState, TokenCheck
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

NOW = 1_800_000_000_000


def test_concurrent_repeated_and_out_of_order_batches_are_counted_exactly_once(state_url: str) -> None:
    engines = [migrated_engine(state_url), create_engine(state_url)]  # two hub processes, one database
    workers = [Fleet(e) for e in engines]
    deliveries = [
        (seq, w) for seq in [*range(1, 101), *range(1, 101, 3)] for w in (0, 1) if (seq + w) % 2 == 0
    ]
    deliveries += [(seq, 1) for seq in range(100, 0, -7)]  # a backfill replaying old batches late
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda d: workers[d[1]].record_batch("dc1/a", 5, d[0], 10, NOW), deliveries))
        (info,) = workers[1].agents()
    finally:
        for e in engines:
            e.dispose()
    sent = len(deliveries)
    assert (info.batches_received, info.points_received) == (100, 1000)
    assert info.duplicates == sent - 100
    assert info.gaps == 0


def test_missing_batches_are_gaps_until_they_arrive(state_url: str) -> None:
    engine = migrated_engine(state_url)
    state = Fleet(engine)
    try:
        for seq in (1, 2, 5, 9):
            state.record_batch("dc1/b", 1, seq, 1, NOW)
        assert (state.agents()[0].gaps, state.total_gaps()) == (5, 5)
        for seq in (3, 4, 6, 7, 8):
            state.record_batch("dc1/b", 1, seq, 1, NOW)
        assert state.total_gaps() == 0
    finally:
        engine.dispose()


def test_the_admin_api_key_is_created_once_and_checked_by_hash(state_url: str) -> None:
    engine = migrated_engine(state_url)
    state = ApiKeys(engine)
    try:
        token = state.ensure_admin_key(NOW)
        assert token is not None and state.ensure_admin_key(NOW) is None
        caller = state.check(token, NOW)
        assert caller is not None and (caller.id, caller.name, caller.role) == ("admin", "admin", "admin")
        assert state.check(token + "x", NOW) is None
    finally:
        engine.dispose()


def test_a_token_with_three_uses_admits_exactly_three_concurrent_enrollments(state_url: str) -> None:
    hubs = [EnrollState(migrated_engine(state_url)), EnrollState(create_engine(state_url))]
    hubs[0].add_token("tok1", "s3cret", "dc1", NOW, 3_600_000, 3)
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(
            pool.map(lambda i: hubs[i % 2].consume_token("tok1", "s3cret", NOW + 1)[0], range(10))
        )
    assert verdicts.count(TokenCheck.OK) == 3
    assert verdicts.count(TokenCheck.USED_UP) == 7
