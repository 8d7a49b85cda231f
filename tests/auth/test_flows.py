"""Sessions, passwords, users and API keys over the live hub's HTTP API, with what the audit log and
/metrics say about them."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import cli
from hub.db.engine import create_engine
from hub.identity.db import EnrollState
from tests.auth.conftest import PASSWORD, AuthHub, login

pytestmark = pytest.mark.integration


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _me(live: AuthHub, headers: dict[str, str]) -> int:
    return httpx.get(f"{live.url}/api/v1/auth/me", headers=headers).status_code


def _metric(live: AuthHub, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    key = f"{name}{{{want}}}" if labels else name
    for line in httpx.get(f"{live.url}/metrics").text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return 0.0


def _audit(live: AuthHub, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{live.url}/api/v1/audit", headers=live.admin(), params=params)
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()["entries"]
    return entries


def test_a_refresh_rotates_and_reusing_the_old_refresh_token_ends_the_session(auth_hub: AuthHub) -> None:
    auth_hub.add_user("refresher", "viewer")
    first = login(auth_hub.hub, "refresher")
    reused_before = _metric(auth_hub, "outpost_hub_auth_refreshes_total", outcome="reused")
    r = httpx.post(f"{auth_hub.url}/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and _me(auth_hub, _bearer(second)) == 200
    stolen = httpx.post(f"{auth_hub.url}/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401
    assert _me(auth_hub, _bearer(second)) == 401  # the whole family is revoked, the newest tokens too
    again = httpx.post(f"{auth_hub.url}/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401
    assert _metric(auth_hub, "outpost_hub_auth_refreshes_total", outcome="reused") == reused_before + 1
    (entry,) = _audit(auth_hub, action="auth.refresh_reused", limit=1)
    assert entry["outcome"] == "revoked" and entry["peer"] == "127.0.0.1"


def test_a_password_change_needs_the_current_one_and_ends_the_other_sessions(auth_hub: AuthHub) -> None:
    auth_hub.add_user("changer", "operator")
    here, elsewhere = login(auth_hub.hub, "changer"), login(auth_hub.hub, "changer")
    url = f"{auth_hub.url}/api/v1/auth/password"
    wrong = httpx.post(
        url, headers=_bearer(here), json={"current_password": "nope", "new_password": "x" * 12}
    )
    short = httpx.post(
        url, headers=_bearer(here), json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert (wrong.status_code, short.status_code) == (401, 400)
    new = "a much better passphrase"
    ok = httpx.post(url, headers=_bearer(here), json={"current_password": PASSWORD, "new_password": new})
    assert ok.status_code == 204
    assert (_me(auth_hub, _bearer(here)), _me(auth_hub, _bearer(elsewhere))) == (200, 401)
    old = httpx.post(f"{auth_hub.url}/api/v1/auth/login", json={"username": "changer", "password": PASSWORD})
    assert old.status_code == 401 and old.json() == {"detail": "wrong username or password"}
    assert _me(auth_hub, _bearer(login(auth_hub.hub, "changer", new))) == 200
    key_change = httpx.post(
        url, headers=auth_hub.admin(), json={"current_password": "a", "new_password": new}
    )
    assert key_change.status_code == 400  # an API key has no password


def test_unknown_users_and_wrong_passwords_get_the_same_answer_and_are_audited(auth_hub: AuthHub) -> None:
    url = f"{auth_hub.url}/api/v1/auth/login"
    unknown = httpx.post(url, json={"username": "nobody-here", "password": PASSWORD})
    wrong = httpx.post(url, json={"username": "viewer", "password": "not the password"})
    assert (unknown.status_code, wrong.status_code) == (401, 401) and unknown.json() == wrong.json()
    entries = _audit(auth_hub, action="auth.login", limit=50)
    assert {("user:nobody-here", "denied"), ("user:viewer", "denied")} <= {
        (e["actor"], e["outcome"]) for e in entries
    }


def test_disabling_a_user_or_changing_their_role_ends_their_sessions_and_is_audited_before_and_after(
    auth_hub: AuthHub,
) -> None:
    user = auth_hub.add_user("shifty", "operator")
    tokens = login(auth_hub.hub, "shifty")
    url = f"{auth_hub.url}/api/v1/users/{user['id']}"
    r = httpx.patch(url, headers=auth_hub.admin(), json={"role": "viewer"})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert _me(auth_hub, _bearer(tokens)) == 401  # the token carried the old role
    demoted = login(auth_hub.hub, "shifty")
    silence = {"matchers": ["device=sw1"], "endsAt": "2099-01-01T00:00:00Z", "comment": "x"}
    assert (
        httpx.post(f"{auth_hub.url}/api/v1/silences", headers=_bearer(demoted), json=silence).status_code
        == 403
    )
    assert httpx.patch(url, headers=auth_hub.admin(), json={"disabled": True}).status_code == 200
    assert _me(auth_hub, _bearer(demoted)) == 401
    refused = httpx.post(
        f"{auth_hub.url}/api/v1/auth/login", json={"username": "shifty", "password": PASSWORD}
    )
    assert refused.status_code == 401
    role_change, disable = _audit(auth_hub, action="user.update", actor="key:admin", limit=2)[::-1]
    assert (role_change["before"]["role"], role_change["after"]["role"]) == ("operator", "viewer")
    assert (disable["before"]["disabled"], disable["after"]["disabled"]) == (False, True)
    assert role_change["target"] == "user:shifty" and role_change["peer"] == "127.0.0.1"
    assert httpx.delete(url, headers=auth_hub.admin()).status_code == 200
    assert httpx.delete(url, headers=auth_hub.admin()).status_code == 404


def test_an_api_key_is_shown_once_scoped_expiring_revocable_and_records_its_last_use(
    auth_hub: AuthHub,
) -> None:
    key = auth_hub.add_key("exporter", "operator", scopes=["alerts:read", "alerts:ingest"])
    secret = key.pop("secret")
    assert secret.startswith("opk_") and key["scopes"] == ["alerts:ingest", "alerts:read"]
    listed = httpx.get(f"{auth_hub.url}/api/v1/keys", headers=auth_hub.admin()).json()["keys"]
    mine = next(k for k in listed if k["id"] == key["id"])
    assert "secret" not in mine and mine["last_used_ms"] is None and secret not in json.dumps(listed)
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"}):
        assert httpx.get(f"{auth_hub.url}/api/v1/alerts", headers=headers).status_code == 200
        assert httpx.get(f"{auth_hub.url}/api/v1/events", headers=headers).status_code == 403  # narrowed
    listed = httpx.get(f"{auth_hub.url}/api/v1/keys", headers=auth_hub.admin()).json()["keys"]
    assert next(k for k in listed if k["id"] == key["id"])["last_used_ms"] is not None
    beyond = httpx.post(
        f"{auth_hub.url}/api/v1/keys",
        headers=auth_hub.admin(),
        json={"name": "greedy", "role": "viewer", "scopes": ["alerts:write"]},
    )
    assert beyond.status_code == 400  # a key never holds more than its role
    short = auth_hub.add_key("short-lived", "viewer", ttl_s=1)
    assert _me(auth_hub, {"X-API-Key": short["secret"]}) == 200
    time.sleep(1.1)
    assert _me(auth_hub, {"X-API-Key": short["secret"]}) == 401
    assert (
        httpx.delete(f"{auth_hub.url}/api/v1/keys/{key['id']}", headers=auth_hub.admin()).status_code == 200
    )
    assert _me(auth_hub, {"X-API-Key": secret}) == 401
    assert (
        httpx.delete(f"{auth_hub.url}/api/v1/keys/{key['id']}", headers=auth_hub.admin()).status_code == 404
    )
    revoked = _audit(auth_hub, action="key.revoke", limit=1)[0]
    assert revoked["before"]["revoked_ms"] is None and revoked["after"]["revoked_ms"] is not None


def test_changes_through_other_routes_are_audited_and_no_entry_holds_a_secret(auth_hub: AuthHub) -> None:
    operator = login(auth_hub.hub, "operator")
    silence = {"matchers": ["device=sw9"], "endsAt": "2099-01-01T00:00:00Z", "comment": "swap"}
    r = httpx.post(f"{auth_hub.url}/api/v1/silences", headers=_bearer(operator), json=silence)
    assert r.status_code == 201, r.text
    (entry,) = _audit(auth_hub, actor="user:operator", action="POST /api/v1/silences", limit=1)
    assert entry["outcome"] == "201" and entry["after"]["id"] == r.json()["id"]
    everything = json.dumps(_audit(auth_hub, limit=1000))
    for secret in (
        PASSWORD,
        auth_hub.admin_key,
        operator["access_token"],
        operator["refresh_token"],
        "$argon2",
    ):
        assert secret not in everything


def test_the_cli_prints_the_audit_log(
    auth_hub: AuthHub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    umask = os.umask(0o022)
    try:
        assert cli.main(["audit", "--limit", "1000", "--config", str(auth_hub.hub.config_path)]) == 0
    finally:
        os.umask(umask)
    out = capsys.readouterr().out
    assert "user.add  user:viewer  peer=cli  ok" in out and "key:admin  user.add  user:operator" in out


def test_many_clients_at_once_authenticate_with_keys_and_tokens_and_log_in_concurrently(
    auth_hub: AuthHub,
) -> None:
    auth_hub.add_user("crowd", "viewer")
    key = auth_hub.add_key("crowd", "viewer")["secret"]
    with ThreadPoolExecutor(8) as pool:
        sessions = list(pool.map(lambda _: login(auth_hub.hub, "crowd"), range(8)))
        credentials = [{"X-API-Key": key}] + [_bearer(s) for s in sessions]

        def hammer(i: int) -> list[int]:
            with httpx.Client(base_url=auth_hub.url) as client:
                return [
                    client.get("/api/v1/auth/me", headers=credentials[i % 9]).status_code for _ in range(20)
                ]

        answers = [code for codes in pool.map(hammer, range(9)) for code in codes]
    assert len({s["refresh_token"] for s in sessions}) == 8
    assert answers == [200] * 180


def test_the_enrollment_audit_is_read_through_the_same_endpoint(auth_hub: AuthHub) -> None:
    engine = create_engine(f"sqlite:///{auth_hub.hub.data_dir / 'state.sqlite'}")
    try:  # what the enrollment listener records for a refused attempt
        EnrollState(engine).record(1_800_000_000_000, "enroll", "tok9", "dc1/edge9", "10.0.0.9", "bad_token")
    finally:
        engine.dispose()
    entries = _audit(auth_hub, source="enrollment", limit=10)
    assert {
        "at_ms": 1_800_000_000_000,
        "actor": "agent:dc1/edge9",
        "action": "enroll.enroll",
        "target": "token:tok9",
        "peer": "10.0.0.9",
        "outcome": "bad_token",
    } in entries
    viewer = login(auth_hub.hub, "viewer")
    refused = httpx.get(
        f"{auth_hub.url}/api/v1/audit", headers=_bearer(viewer), params={"source": "enrollment"}
    )
    assert refused.status_code == 403
