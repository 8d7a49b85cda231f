"""Every route of the live hub's OpenAPI document x every kind of credential: no credential, expired,
forged (`alg: none`, wrong key, tampered claims), revoked (logged-out session, revoked key), each role as
a user and as an API key, and a key narrowed to one scope. Expectations are written out here, not derived
from the hub's own role table."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from typing import Any

import httpx
import jwt
import pytest

from tests.auth.conftest import AuthHub, login

pytestmark = pytest.mark.integration

# Which scopes each role holds, as the issue states them: viewer reads, operator operates, admin all.
_ADMIN_ONLY = ("users:", "keys:", "webhooks:", "audit:")


def _role_allows(role: str, scope: str) -> bool:
    if role == "admin":
        return True
    if scope.startswith(_ADMIN_ONLY):
        return False
    return role == "operator" or scope.endswith(":read")


# Open by design: logging in, refreshing (the refresh token is the credential), probes and Prometheus.
PUBLIC = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
}


# InfluxDB's write endpoints check the credential in the handler, where InfluxDB clients send it
# (`Authorization: Token <key>`), so the document shows no security for them; the walk sends the same
# credentials that way and expects the same answers.
OWN_CREDENTIAL = {("POST", "/api/v2/write"): "ingest:write", ("POST", "/write"): "ingest:write"}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, list[str] | None, dict[str, Any]]]:
    """(method, path, scopes or None when public, operation) for every operation, and /openapi.json."""
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            security = op.get("security")
            scopes = None if security is None else sorted(security[0].values())[0]
            own = OWN_CREDENTIAL.get((method.upper(), path))
            ops.append((method.upper(), path, [own] if own else scopes, op))
    ops.append(("GET", "/openapi.json", ["docs:read"], {}))
    return ops


def _request(
    client: httpx.Client, method: str, path: str, op: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    concrete = path
    for p in op.get("parameters", []):
        if p["in"] == "path":
            concrete = concrete.replace("{" + p["name"] + "}", "0a")
    if (method, path) in OWN_CREDENTIAL:
        secret = headers.get("X-API-Key") or headers.get("Authorization", "").removeprefix("Bearer ")
        influx = {"Authorization": f"Token {secret}", "Content-Type": "text/plain"} if secret else {}
        return client.request(method, concrete, headers=influx, content=b"cpu value=1 1700000000000000000\n")
    content = op.get("requestBody", {}).get("content", {})
    if content and "application/json" not in content:  # e.g. remote write's snappy protobuf
        kind = next(iter(content))
        return client.request(method, concrete, headers={**headers, "Content-Type": kind}, content=b"")
    body: Any = None
    if content:
        body = [] if content["application/json"]["schema"].get("type") == "array" else {}
    return client.request(method, concrete, headers=headers, json=body)


def _forgeries(live: AuthHub, viewer_token: str, viewer_session: str) -> dict[str, dict[str, str]]:
    """Credentials that must all be refused with 401."""
    kid = jwt.get_unverified_header(viewer_token)["kid"]
    claims = jwt.decode(viewer_token, options={"verify_signature": False})
    head, _, sig = viewer_token.split(".")
    with sqlite3.connect(live.hub.data_dir / "state.sqlite") as db:
        (secret,) = db.execute("SELECT secret FROM jwt_signing_keys WHERE kid = ?", (kid,)).fetchone()
    key = base64.b64decode(secret)
    now = int(time.time())
    expired = jwt.encode(
        {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600},
        key,
        "HS256",
        headers={"kid": kid},
    )
    revoked_key = live.add_key("to-revoke", "admin")
    assert (
        httpx.delete(f"{live.url}/api/v1/keys/{revoked_key['id']}", headers=live.admin()).status_code == 200
    )
    gone = login(live.hub, "operator")
    bearer = {"Authorization": f"Bearer {gone['access_token']}"}
    assert httpx.post(f"{live.url}/api/v1/auth/logout", headers=bearer).status_code == 204
    return {
        "none": {},
        "expired": {"Authorization": f"Bearer {expired}"},
        "alg none": {
            "Authorization": f"Bearer {_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}."
        },
        "wrong key": {
            "Authorization": f"Bearer {jwt.encode(claims, b'x' * 32, 'HS256', headers={'kid': kid})}"
        },
        "tampered": {"Authorization": f"Bearer {head}.{_b64({**claims, 'role': 'admin'})}.{sig}"},
        "logged out": bearer,
        "revoked key": {"X-API-Key": revoked_key["secret"]},
    }


def test_every_route_refuses_bad_credentials_and_admits_exactly_the_roles_holding_its_scope(
    auth_hub: AuthHub,
) -> None:
    doc = httpx.get(f"{auth_hub.url}/openapi.json", headers=auth_hub.admin()).json()
    ops = _operations(doc)
    # Every other route declares a scope; webhooks from other tools are signed with their sender's secret.
    open_ops = {(m, p) for m, p, scopes, _ in ops if scopes is None}
    assert PUBLIC <= open_ops and {p for _, p in open_ops - PUBLIC if not p.startswith("/webhooks/")} == set()
    viewer = login(auth_hub.hub, "viewer")
    refused = _forgeries(auth_hub, viewer["access_token"], "")
    roles: dict[str, tuple[str, frozenset[str] | None]] = {}
    callers: dict[str, dict[str, str]] = {}
    for role in ("viewer", "operator", "admin"):
        callers[f"user {role}"] = {"Authorization": f"Bearer {login(auth_hub.hub, role)['access_token']}"}
        roles[f"user {role}"] = (role, None)
    callers["key operator"] = {"X-API-Key": auth_hub.add_key("matrix-operator", "operator")["secret"]}
    roles["key operator"] = ("operator", None)
    narrow = auth_hub.add_key("matrix-narrow", "admin", scopes=["alerts:read"])
    callers["key admin narrowed to alerts:read"] = {"X-API-Key": narrow["secret"]}
    roles["key admin narrowed to alerts:read"] = ("admin", frozenset({"alerts:read"}))
    wrong: list[str] = []
    checked = 0
    client = httpx.Client(base_url=auth_hub.url, timeout=30)
    for method, path, scopes, op in ops:
        if scopes is None:
            continue
        for name, headers in refused.items():
            r = _request(client, method, path, op, headers)
            checked += 1
            if r.status_code != 401 or r.headers.get("www-authenticate") != "Bearer":
                wrong.append(f"{method} {path} with {name}: {r.status_code}")
        for name, headers in callers.items():
            if path == "/api/v1/auth/logout":  # would end the session the rest of the walk uses
                continue
            role, narrowed = roles[name]
            allowed = all(_role_allows(role, s) and (narrowed is None or s in narrowed) for s in scopes)
            r = _request(client, method, path, op, headers)
            checked += 1
            # 503 is "not served by this process" (e.g. confirmation off): past auth all the same.
            ok = r.status_code not in (401, 403, 500) if allowed else r.status_code == 403
            if not ok:
                wrong.append(f"{method} {path} as {name} (allowed={allowed}): {r.status_code} {r.text[:80]}")
    client.close()
    assert wrong == []
    assert checked > 30 * (len(refused) + len(callers))
    for name, (role, _) in roles.items():  # logout: each role may end its own session
        if name.startswith("user"):
            fresh = login(auth_hub.hub, role)
            bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
            assert httpx.post(f"{auth_hub.url}/api/v1/auth/logout", headers=bearer).status_code == 204
            assert httpx.get(f"{auth_hub.url}/api/v1/auth/me", headers=bearer).status_code == 401
