"""Auth bench: what authentication adds to a request, and what a login costs.

1. What auth adds (the goal's measure). One server process (`--twin`, started by this bench) serves the
   hub's own app (`create_app`, real migrated SQLite state, rate limits opened up so they never refuse)
   twice, each on its own uvicorn server configured like the hub's: once as is, once with the credential
   check (`authorize`: header parsing, the rate limits, `AuthService.authenticate`, the auth histogram)
   replaced by a stub that returns the API key's principal. One keep-alive client per server, `--rounds`
   rounds, each one request of every kind in turn, all `GET /api/v1/auth/me` (same route, same handler,
   same answer but for the principal's fields):
   - without the check (stub), no credential;
   - with an API key (`X-API-Key`: SHA-256, confirmed by an indexed read at most once a second);
   - with a JWT access token (signature verified once, its session confirmed at most once a second).
   Added = the checked request's p50/p99 minus the stub's, same run. Goal (issue 13): <= 1 ms p99.
2. End to end on `outpost-hub run` (same opened rate limits), for context: `GET /healthz` (first route,
   no dependency, a dict answer) beside `GET /api/v1/auth/me` with each credential. Their difference is
   auth plus the deeper route match and the pydantic answer, so it overstates what auth adds.
3. The same checks in-process (`AuthService.check`, on the hub's database file): the cost without
   HTTP or the thread hop.
4. Login: `--logins` sequential logins (argon2id verify on its pool, a session row, an audit row).

Exits non-zero when a request fails or a server does not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.api.app import create_app  # noqa: E402
from hub.api.auth import authorize  # noqa: E402
from hub.api.deps import HubContext  # noqa: E402
from hub.auth.config import AuthConfig, RateLimitsConfig  # noqa: E402
from hub.auth.principal import Principal  # noqa: E402
from hub.auth.rbac import Role  # noqa: E402
from hub.auth.service import AuthService  # noqa: E402
from hub.config import HubConfig  # noqa: E402
from hub.db.engine import create_engine  # noqa: E402
from hub.fleet.agents import Fleet  # noqa: E402
from hub.serve import AsgiServer  # noqa: E402
from hub.store.factory import build_store  # noqa: E402
from hub.telemetry import HubMetrics  # noqa: E402
from shared.clock import SystemClock  # noqa: E402
from tests.support.hubdb import migrated_engine  # noqa: E402
from tests.support.outpost import start_hub  # noqa: E402

PASSWORD = "bench password, long enough"
OPEN = {"rate": 1_000_000, "burst": 1_000_000}
LIMITS = {
    k: OPEN
    for k in ("login_per_ip", "login_per_user", "api_per_ip", "read_per_principal", "write_per_principal")
}
ME = "/api/v1/auth/me"
UNCHECKED = "without the check (stub)"


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
        le50, le99 = (next(le for le, n in rows if n >= q * total) for q in (0.5, 0.99))
        out[kind] = (int(total), le50, le99)
    return out


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


Kinds = dict[str, tuple[httpx.Client, str, dict[str, str]]]


def _rounds(kinds: Kinds, rounds: int) -> dict[str, list[float]]:
    """`rounds` rounds of one request of every kind in turn (after a warm-up); ms per request.

    Raises:
        SystemExit: when a request is not answered 200.
    """
    for _ in range(200):  # warm-up: connections, caches, the signing key
        for client, path, headers in kinds.values():
            client.get(path, headers=headers).raise_for_status()
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    failures = 0
    for _ in range(rounds):
        for name, (client, path, headers) in kinds.items():
            t = time.perf_counter()
            r = client.get(path, headers=headers)
            samples[name].append((time.perf_counter() - t) * 1000)
            failures += r.status_code != 200
    if failures:
        raise SystemExit(f"auth bench: {failures} requests failed")
    return samples


def _login(client: httpx.Client) -> str:
    body = {"username": "bench", "password": PASSWORD}
    token: str = client.post("/api/v1/auth/login", json=body).raise_for_status().json()["access_token"]
    return token


# ---- 1. the twin servers: the same app with and without the credential check ---------------------------


class _CpuTimed:
    """Around each twin app: the event loop thread's CPU time per GET, by credential header. One
    request is in flight at a time, so nothing else runs on the loop meanwhile; unlike wall time,
    this does not count the time other processes held the CPU."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.ms: dict[str, list[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self._app(scope, receive, send)
            return
        names = {name for name, _ in scope["headers"]}
        kind = "key" if b"x-api-key" in names else "jwt" if b"authorization" in names else "none"
        t = time.thread_time()
        await self._app(scope, receive, send)
        self.ms.setdefault(kind, []).append((time.thread_time() - t) * 1000)


async def _serve_twins(tmp: Path) -> None:
    """`--twin`: serves both apps until stdin closes; prints their ports and the admin key first, and
    at the end the CPU time of every GET (`_CpuTimed.ms` of both)."""
    clock = SystemClock()
    engine = migrated_engine(f"sqlite:///{tmp / 'state.sqlite'}")
    config = AuthConfig(rate_limits=RateLimitsConfig.model_validate(LIMITS))
    auth = AuthService(engine, clock, config, CollectorRegistry())
    key = auth.keys.ensure_admin_key(clock.now_ms())
    principal = auth.check(key or "")
    if key is None or principal is None:
        raise SystemExit("auth bench: the twin's admin key does not check")
    await auth.add_user("bench", "bench", PASSWORD, Role.ADMIN, "bench")  # same scopes as the key
    store = build_store(HubConfig(data_dir=tmp).store, tmp)
    # One context (and metrics registry) per app: create_app registers its request series on it.
    contexts = [HubContext(store, Fleet(engine), auth, HubMetrics(), clock) for _ in range(2)]
    checked, unchecked = (create_app(ctx) for ctx in contexts)

    async def stub() -> Principal:
        return principal

    unchecked.dependency_overrides[authorize] = stub
    timed = [_CpuTimed(checked), _CpuTimed(unchecked)]
    servers = [AsgiServer(app, "127.0.0.1:0") for app in timed]
    try:
        for server in servers:
            await server.start()
        print(json.dumps({"checked": servers[0].port, "unchecked": servers[1].port, "key": key}), flush=True)
        await asyncio.to_thread(sys.stdin.read)
        print(json.dumps({**timed[0].ms, **timed[1].ms}), flush=True)
    finally:
        for server in servers:
            await server.aclose()
        for ctx in contexts:
            ctx.queries.close()
        auth.close()
        engine.dispose()


def _twin_rounds(tmp: Path, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Part 1: wall time per request at the client, and the server's CPU time per request (both by
    kind, warm-up left out)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--twin", str(tmp)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("auth bench: the twin servers did not start")
        twin = json.loads(line)
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{twin['checked']}", timeout=30) as checked,
            httpx.Client(base_url=f"http://127.0.0.1:{twin['unchecked']}", timeout=30) as unchecked,
        ):
            jwt = _login(checked)
            kinds: Kinds = {
                UNCHECKED: (unchecked, ME, {}),
                f"API key GET {ME}": (checked, ME, {"X-API-Key": twin["key"]}),
                f"JWT GET {ME}": (checked, ME, {"Authorization": f"Bearer {jwt}"}),
            }
            wall = _rounds(kinds, rounds)
        proc.stdin.close()  # the twin prints its CPU times and stops
        by_header = json.loads(proc.stdout.readline())
        headers = zip(kinds, ("none", "key", "jwt"), strict=True)
        cpu = {name: by_header[kind][-rounds:] for name, kind in headers}
        return wall, cpu
    finally:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- 2.-4. the real hub process --------------------------------------------------------------------------


def _hub_rounds(url: str, key: str, state: Path, args: argparse.Namespace) -> None:
    admin = {"X-API-Key": key}
    with httpx.Client(base_url=url, timeout=30) as client:
        made = client.post("/api/v1/users", headers=admin, json={"username": "bench", "password": PASSWORD})
        made.raise_for_status()
        jwt = _login(client)
        kinds: Kinds = {
            "baseline GET /healthz": (client, "/healthz", {}),
            f"API key GET {ME}": (client, ME, admin),
            f"JWT GET {ME}": (client, ME, {"Authorization": f"Bearer {jwt}"}),
        }
        samples = _rounds(kinds, args.rounds)
        histogram = _auth_histogram(client.get("/metrics").text)
        body = {"username": "bench", "password": PASSWORD}
        logins = _time(lambda: client.post("/api/v1/auth/login", json=body).raise_for_status(), args.logins)
    base = samples["baseline GET /healthz"]
    print("2. end to end on outpost-hub run (healthz: first route, no dependency; overstates auth):")
    for name, ms in samples.items():
        print(_row(name, ms, None if ms is base else base))
    print("   inside the hub (outpost_hub_api_auth_seconds: rate limits + credential check, its buckets):")
    for kind, (count, le50, le99) in histogram.items():
        print(f"  {kind:<34} {count:6d} requests   p50 <= {le50 * 1000:.2f} ms   p99 <= {le99 * 1000:.2f} ms")
    engine = create_engine(f"sqlite:///{state}")
    service = AuthService(engine, SystemClock(), AuthConfig(), CollectorRegistry())
    try:
        for credential in (key, jwt):
            if service.check(credential) is None:
                raise SystemExit("auth bench: the in-process check refused a valid credential")
        print("3. in-process AuthService, on the hub's database file:")
        print(_row("check API key (database read)", _time(lambda: service.check(key), args.rounds)))
        print(_row("check JWT (database read)", _time(lambda: service.check(jwt), args.rounds)))
        for name, credential in (("API key", key), ("JWT", jwt)):
            ms = asyncio.run(_authenticate_ms(service, credential, args.rounds))
            print(_row(f"authenticate {name} (remembered)", ms))
    finally:
        service.close()
        engine.dispose()
    print("4. login (argon2id m=19 MiB t=2 p=1, session and audit rows):")
    print(_row(f"POST /api/v1/auth/login x{args.logins}", logins))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--logins", type=int, default=40)
    ap.add_argument("--twin", type=Path, help=argparse.SUPPRESS)  # the server process of part 1
    args = ap.parse_args()
    if args.twin is not None:
        asyncio.run(_serve_twins(args.twin))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        twin, cpu = _twin_rounds(Path(tmp), args.rounds)
        base = twin[UNCHECKED]
        print(f"auth bench: {args.rounds} rounds per part, one keep-alive client per server")
        print(f"1. what auth adds: the hub's app with and without the credential check, GET {ME}")
        print("   wall time at the client (the goal's measure):")
        for name, ms in twin.items():
            print(_row(name, ms, None if ms is base else base))
        print("   CPU time of the server's event loop thread per request (load does not inflate it):")
        for name, ms in cpu.items():
            print(_row(name, ms, None if name == UNCHECKED else cpu[UNCHECKED]))
        hub = start_hub(Path(tmp), extra={"auth": {"rate_limits": LIMITS}})
        try:
            _hub_rounds(hub.api_url, hub.token, Path(tmp) / "hub" / "state.sqlite", args)
        finally:
            hub.stop()
    worst = max(_pct(twin[n], 0.99) - _pct(base, 0.99) for n in twin if n != UNCHECKED)
    print(
        f"goal: auth adds <= 1 ms p99 (part 1) -> worst added p99 {worst:.3f} ms:"
        f" {'met' if worst <= 1 else 'NOT met'}"
    )
    print(f"  (median without the check {statistics.median(base):.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
