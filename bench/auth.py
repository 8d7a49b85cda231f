"""Auth bench: what authentication adds to a request, and what a login costs, on a real hub process.

1. Per request. One keep-alive client against `outpost-hub run` (SQLite state, rate limits opened up so
   they never refuse), `--rounds` rounds, each one request of every kind in turn:
   - baseline: `GET /healthz` (no credential, no scope check);
   - `GET /api/v1/auth/me` with an API key (`X-API-Key`: SHA-256, one indexed read);
   - the same with a JWT access token (signature check, one indexed read of its session).
   The added cost is the authenticated request's p50/p99 minus the baseline's, from the same run. `/auth/me`
   also builds a small pydantic answer, so the difference slightly overstates what auth adds.
   Goal (issue 13): auth adds <= 1 ms p99 to a request.
2. The same checks in-process (`AuthService.check`, on the hub's own database file): the cost without
   HTTP or the thread hop.
3. Login: `--logins` sequential logins (argon2id verify on its pool, a session row, an audit row).

Exits non-zero when a request fails or the hub does not start.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.auth.config import AuthConfig  # noqa: E402
from hub.auth.service import AuthService  # noqa: E402
from hub.db.engine import create_engine  # noqa: E402
from shared.clock import SystemClock  # noqa: E402
from tests.support.outpost import start_hub  # noqa: E402

PASSWORD = "bench password, long enough"
OPEN = {"rate": 1_000_000, "burst": 1_000_000}
LIMITS = {
    k: OPEN
    for k in ("login_per_ip", "login_per_user", "api_per_ip", "read_per_principal", "write_per_principal")
}


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(name: str, ms: list[float], base: list[float] | None = None) -> str:
    p50, p99 = _pct(ms, 0.5), _pct(ms, 0.99)
    text = f"  {name:<34} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms"
    if base is not None:
        text += f"   added: p50 {p50 - _pct(base, 0.5):+7.3f} ms   p99 {p99 - _pct(base, 0.99):+7.3f} ms"
    return text


async def _authenticate_ms(service: AuthService, credential: str, n: int) -> list[float]:
    """What the REST dependency and the WebSocket pay per check, on one event loop."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        if await service.authenticate(credential) is None:
            raise SystemExit("auth bench: authenticate refused a valid credential")
        out.append((time.perf_counter() - t) * 1000)
    return out


def _auth_histogram(page: str) -> dict[str, tuple[int, float, float]]:
    """Per credential kind: requests, and the bucket bounds holding the p50 and p99."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for line in page.splitlines():
        if line.startswith("outpost_hub_api_auth_seconds_bucket{"):
            labels, value = line.rsplit(" ", 1)
            kind = labels.split('kind="')[1].split('"')[0]
            le = labels.split('le="')[1].split('"')[0]
            buckets.setdefault(kind, []).append((float(le), float(value)))
    out = {}
    for kind, rows in buckets.items():
        rows.sort()
        total = rows[-1][1]
        out[kind] = (int(total), *(next(le for le, n in rows if n >= q * total) for q in (0.5, 0.99)))
    return out


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--logins", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub = start_hub(Path(tmp), extra={"auth": {"rate_limits": LIMITS}})
        try:
            return _run(hub.api_url, hub.token, Path(tmp) / "hub" / "state.sqlite", args)
        finally:
            hub.stop()


def _run(url: str, key: str, state: Path, args: argparse.Namespace) -> int:
    admin = {"X-API-Key": key}
    with httpx.Client(base_url=url, timeout=30) as client:
        made = client.post("/api/v1/users", headers=admin, json={"username": "bench", "password": PASSWORD})
        made.raise_for_status()
        body = {"username": "bench", "password": PASSWORD}
        jwt = client.post("/api/v1/auth/login", json=body).json()["access_token"]
        kinds: dict[str, tuple[str, dict[str, str]]] = {
            "baseline GET /healthz": ("/healthz", {}),
            "API key GET /api/v1/auth/me": ("/api/v1/auth/me", admin),
            "JWT GET /api/v1/auth/me": ("/api/v1/auth/me", {"Authorization": f"Bearer {jwt}"}),
        }
        samples: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(200):  # warm-up: connections, caches, the signing key
            for path, headers in kinds.values():
                client.get(path, headers=headers).raise_for_status()
        failures = 0
        for _ in range(args.rounds):
            for name, (path, headers) in kinds.items():
                t = time.perf_counter()
                r = client.get(path, headers=headers)
                samples[name].append((time.perf_counter() - t) * 1000)
                failures += r.status_code != 200
        histogram = _auth_histogram(client.get("/metrics").text)
        logins = _time(lambda: client.post("/api/v1/auth/login", json=body).raise_for_status(), args.logins)
    if failures:
        print(f"auth bench: {failures} requests failed", file=sys.stderr)
        return 1
    base = samples["baseline GET /healthz"]
    print(f"auth bench: {args.rounds} rounds, one keep-alive client, real hub process (SQLite state)")
    print("per request (HTTP round trip):")
    for name, ms in samples.items():
        print(_row(name, ms, None if ms is base else base))
    print("inside the hub (outpost_hub_api_auth_seconds: rate limits + credential check, from its buckets):")
    for kind, (count, le50, le99) in histogram.items():
        print(f"  {kind:<34} {count:6d} requests   p50 <= {le50 * 1000:.2f} ms   p99 <= {le99 * 1000:.2f} ms")
    engine = create_engine(f"sqlite:///{state}")
    service = AuthService(engine, SystemClock(), AuthConfig(), CollectorRegistry())
    try:
        for credential in (key, jwt):
            if service.check(credential) is None:
                print("auth bench: the in-process check refused a valid credential", file=sys.stderr)
                return 1
        print("in-process AuthService, on the hub's database file:")
        print(_row("check API key (database read)", _time(lambda: service.check(key), args.rounds)))
        print(_row("check JWT (database read)", _time(lambda: service.check(jwt), args.rounds)))
        for name, credential in (("API key", key), ("JWT", jwt)):
            ms = asyncio.run(_authenticate_ms(service, credential, args.rounds))
            print(_row(f"authenticate {name} (remembered)", ms))
    finally:
        service.close()
        engine.dispose()
    print("login (argon2id m=19 MiB t=2 p=1, session and audit rows):")
    print(_row(f"POST /api/v1/auth/login x{args.logins}", logins))
    worst = max(_pct(samples[n], 0.99) - _pct(base, 0.99) for n in samples if samples[n] is not base)
    print(
        f"goal: auth adds <= 1 ms p99 -> worst added p99 {worst:.3f} ms: {'met' if worst <= 1 else 'NOT met'}"
    )
    print(f"  (median of the baseline {statistics.median(base):.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
