"""Access tokens on a real migrated database: forgeries of every kind fail, time claims are enforced, and a
key rotation keeps tokens of the old key valid until they expire."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa

from hub.auth.jwt import ALGORITHM, AUDIENCE, ISSUER, LEEWAY_MS, AccessTokens, SigningKeys
from shared.clock import FakeClock
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

TTL_MS = 900_000
ROTATE_MS = 86_400_000


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    e = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    yield e
    e.dispose()


def _tokens(engine: sa.Engine, clock: FakeClock) -> AccessTokens:
    return AccessTokens(SigningKeys(engine, clock, ROTATE_MS, TTL_MS), clock, TTL_MS)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_verifies_with_its_claims_and_names_its_key_in_kid(engine: sa.Engine) -> None:
    clock = FakeClock()
    tokens = _tokens(engine, clock)
    token, exp_ms = tokens.issue("u1", "alice", "operator", "s1")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and len(header["kid"]) == 16
    claims = tokens.verify(token)
    assert claims is not None
    assert (claims.user_id, claims.username, claims.role, claims.session_id) == (
        "u1",
        "alice",
        "operator",
        "s1",
    )
    assert claims.expires_ms == exp_ms == (clock.now_ms() + TTL_MS) // 1000 * 1000


def test_alg_none_a_wrong_key_and_tampered_claims_are_refused(engine: sa.Engine) -> None:
    clock = FakeClock()
    tokens = _tokens(engine, clock)
    token, _ = tokens.issue("u1", "alice", "viewer", "s1")
    head, body, sig = token.split(".")
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    none_alg = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{body}."
    wrong_key = jwt.encode(claims, b"k" * 32, algorithm=ALGORITHM, headers={"kid": kid})
    tampered = f"{head}.{_b64({**claims, 'role': 'admin'})}.{sig}"
    unknown_kid = jwt.encode(claims, b"k" * 32, algorithm=ALGORITHM, headers={"kid": "0" * 16})
    assert [tokens.verify(t) for t in (none_alg, wrong_key, tampered, unknown_kid, "a.b.c", "")] == [None] * 6
    assert tokens.verify(token) is not None


async def test_expired_not_yet_valid_and_foreign_audience_tokens_are_refused(engine: sa.Engine) -> None:
    clock = FakeClock()
    tokens = _tokens(engine, clock)
    token, _ = tokens.issue("u1", "alice", "viewer", "s1")
    await clock.advance(TTL_MS / 1000 + LEEWAY_MS / 1000 + 1)
    assert tokens.verify(token) is None  # expired
    fresh, _ = tokens.issue("u1", "alice", "viewer", "s1")
    kid = jwt.get_unverified_header(fresh)["kid"]
    with engine.connect() as db:
        secret = db.execute(sa.text("SELECT secret FROM jwt_signing_keys")).scalar_one()
    key = base64.b64decode(secret)
    now_s = clock.now_ms() // 1000
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u1",
        "name": "a",
        "role": "admin",
        "sid": "s1",
        "iat": now_s,
        "nbf": now_s,
        "exp": now_s + 60,
    }
    future = jwt.encode({**base, "nbf": now_s + 60, "exp": now_s + 120}, key, ALGORITHM, headers={"kid": kid})
    foreign = jwt.encode({**base, "aud": "someone-else"}, key, ALGORITHM, headers={"kid": kid})
    no_exp = jwt.encode({k: v for k, v in base.items() if k != "exp"}, key, ALGORITHM, headers={"kid": kid})
    genuine = jwt.encode(base, key, ALGORITHM, headers={"kid": kid})
    assert [tokens.verify(t) for t in (future, foreign, no_exp)] == [None] * 3
    assert tokens.verify(genuine) is not None  # the forgeries differ from it only in the claim tested


async def test_a_rotated_key_verifies_until_its_tokens_expired_and_a_second_process_sees_the_new_key(
    engine: sa.Engine,
) -> None:
    clock = FakeClock()
    one, two = _tokens(engine, clock), _tokens(engine, clock)  # two hub processes, one database
    old, _ = one.issue("u1", "alice", "viewer", "s1")
    await clock.advance(ROTATE_MS / 1000 - 60)  # the old key is a minute from rotation: its token still fresh
    late_old, _ = one.issue("u1", "alice", "viewer", "s1")
    await clock.advance(120)
    new, _ = one.issue("u1", "alice", "viewer", "s1")
    kids = {jwt.get_unverified_header(t)["kid"] for t in (old, late_old, new)}
    assert len(kids) == 2 and jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert two.verify(new) is not None and two.verify(late_old) is not None  # nobody logged out
    await clock.advance(TTL_MS / 1000)  # the old key retired with its last token's expiry
    assert one.verify(late_old) is None and two.verify(late_old) is None
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM jwt_signing_keys")).scalar_one() == 2
