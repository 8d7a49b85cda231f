"""Real local Datadog Logs and Splunk servers for the poller tests, implementing the documented subset
the pollers use and recording every request (path, headers, body) they receive; and the hub's real log
intake on SQLite for the pollers to store through.

Each server is a stdlib `ThreadingHTTPServer` in a thread of its own, so it answers whatever the test's
event loop does. Datadog: `POST /api/v2/logs/events/search` with `filter{query,from,to,indexes}`,
`sort`, `page{limit,cursor}`, answering `data[]`, `meta.page.after`, `links.next` and the
`X-RateLimit-*` headers (a 429 on demand). Splunk: `POST /services/search/jobs/export` (form body,
`output_mode=json`, earliest/latest_time), streaming one JSON object per line, newest first.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import json
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.db.engine import create_engine
from hub.enrich.logs.config import LogsConfig
from hub.enrich.logs.counts import TemplateCounts
from hub.enrich.logs.intake import LogIntake
from hub.enrich.logs.metrics import LogMetrics
from hub.enrich.logs.models import log_lines
from hub.enrich.logs.store import LogStore
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from hub.telemetry import HubMetrics
from tests.support.hubdb import migrated_engine

DD_API_KEY = "ddapi-0123456789abcdef-SECRET"
DD_APP_KEY = "ddapp-fedcba9876543210-SECRET"
SPLUNK_TOKEN = "splunk-token-5e5e5e5e-SECRET"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any  # decoded JSON (Datadog) or the form as a dict (Splunk)


def iso(ms: int) -> str:
    return (
        (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000 + 0.5)


class _Recording(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.received: list[Received] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class FakeDatadog(_Recording):
    """Events are dicts `{"id", "attributes": {...}}`; `answer_429` answers that many requests 429 (with
    `X-RateLimit-Reset: reset_s`) before serving again; `status` other than 200 answers every request so,
    echoing the request's API key in the body (a careless server: the poller must scrub it);
    `serve_pages` answers 503 once that many pages were served."""

    def __init__(self) -> None:
        super().__init__(_DatadogHandler)
        self.events: list[dict[str, Any]] = []
        self.answer_429 = 0
        self.reset_s = 1
        self.remaining = 299  # X-RateLimit-Remaining of the answers served
        self.status = 200
        self.serve_pages: int | None = None  # after this many pages served, answer 503 (source down)
        self.served = 0
        self.generation = 0  # bump it to expire the cursors given out so far (answered 400, as Datadog does)
        self.arrivals: list[float] = []

    def cursor(self, after: int) -> str:
        """The opaque `meta.page.after` of the page starting at event `after` of a search."""
        return base64.b64encode(f"{self.generation}:{after}".encode()).decode()

    def add(self, ts_ms: int, message: str, **attrs: Any) -> None:
        with self.lock:
            n = len(self.events)
            attributes = {"timestamp": iso(ts_ms), "host": "web-1", "service": "shop", "status": "info"}
            attributes |= {"message": message, "attributes": {}, "tags": ["env:test"], **attrs}
            self.events.append({"id": f"AQAAAY{n:06d}", "type": "log", "attributes": attributes})


class _DatadogHandler(BaseHTTPRequestHandler):
    server: FakeDatadog

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        with srv.lock:
            srv.received.append(Received(self.path, dict(self.headers), body))
            srv.arrivals.append(time.monotonic())
            throttled = srv.answer_429 > 0
            srv.answer_429 -= int(throttled)
            down = srv.serve_pages is not None and srv.served >= srv.serve_pages
            srv.served += int(not (throttled or down) and srv.status == 200)
            events = list(srv.events)
        limits = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Period": "3600",
            "X-RateLimit-Reset": str(srv.reset_s),
        }
        if self.path != "/api/v2/logs/events/search":
            return self._send(404, {"errors": ["not found"]}, limits)
        if throttled:
            return self._send(429, {"errors": ["Too many requests"]}, limits | {"X-RateLimit-Remaining": "0"})
        if down:
            return self._send(503, {"errors": ["Service unavailable"]}, limits)
        if srv.status != 200:
            key = self.headers.get("DD-API-KEY", "")
            return self._send(srv.status, {"errors": [f"Forbidden for key {key}"]}, limits)
        if (
            self.headers.get("DD-API-KEY") != DD_API_KEY
            or self.headers.get("DD-APPLICATION-KEY") != DD_APP_KEY
        ):
            return self._send(403, {"errors": ["Forbidden"]}, limits)
        f, page = body["filter"], body.get("page", {})
        lo, hi = _ms(f["from"]), _ms(f["to"])
        hits = sorted(
            (e for e in events if lo <= _ms(e["attributes"]["timestamp"]) <= hi),
            key=lambda e: e["attributes"]["timestamp"],
        )
        start = 0
        if "cursor" in page:
            gen, start = map(int, base64.b64decode(page["cursor"]).split(b":"))
            if gen != srv.generation:
                return self._send(400, {"errors": ["Invalid cursor"]}, limits)
        chunk = hits[start : start + int(page.get("limit", 10))]
        after = start + len(chunk)
        out: dict[str, Any] = {"data": chunk, "meta": {"page": {}, "status": "done", "elapsed": 12}}
        if after < len(hits):
            cursor = srv.cursor(after)
            out["meta"]["page"]["after"] = cursor
            out["links"] = {"next": f"{srv.url}/api/v2/logs/events?page[cursor]={cursor}"}
        return self._send(200, out, limits | {"X-RateLimit-Remaining": str(srv.remaining)})

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            self.send_header(k.lower(), v)  # as HTTP/2 and many proxies send them: names are case-insensitive
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # a hub stopping mid-request
            self.wfile.write(raw)


class FakeSplunk(_Recording):
    """Results are dicts of Splunk fields; `extra_lines` are streamed after the second result as they are
    (malformed lines, an over-long line, Splunk's error messages) to test how they are handled;
    `piece_bytes` writes the body in pieces that small (lines split across network reads)."""

    def __init__(self) -> None:
        super().__init__(_SplunkHandler)
        self.results: list[dict[str, Any]] = []
        self.extra_lines: list[bytes] = []
        self.piece_bytes: int | None = None

    def add(self, ts_ms: int, raw: str, **fields: Any) -> None:
        with self.lock:
            n = len(self.results)
            self.results.append(
                {
                    "_bkt": "main~12~2E6C1F3A",
                    "_cd": f"12:{1000 + n}",
                    "_indextime": str(ts_ms // 1000 + 1),
                    "_raw": raw,
                    "_serial": str(n),
                    "_time": iso(ts_ms).replace("Z", "+00:00"),
                    "host": "db-1",
                    "index": "main",
                    "source": "/var/log/syslog",
                    "sourcetype": "syslog",
                    "splunk_server": "idx-1",
                    **fields,
                }
            )


class _SplunkHandler(BaseHTTPRequestHandler):
    server: FakeSplunk

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = dict(urllib.parse.parse_qsl(raw))
        srv = self.server
        with srv.lock:
            srv.received.append(Received(self.path, dict(self.headers), form))
            results, extra = list(srv.results), list(srv.extra_lines)
        if self.path != "/services/search/jobs/export":
            self.send_error(404)
            return
        if self.headers.get("Authorization") not in (f"Bearer {SPLUNK_TOKEN}", f"Splunk {SPLUNK_TOKEN}"):
            self._begin(401)
            self.wfile.write(b'{"messages":[{"type":"WARN","text":"call not properly authenticated"}]}')
            return
        if "index_earliest" in form:
            lo, hi = float(form["index_earliest"]), float(form["index_latest"])
            hits = [r for r in results if lo <= float(r["_indextime"]) < hi]
        else:
            lo, hi = float(form["earliest_time"]), float(form["latest_time"])
            hits = [r for r in results if lo <= _ms(r["_time"]) / 1000 < hi]
        hits.sort(key=lambda r: r["_time"], reverse=True)  # Splunk streams newest first
        self._begin(200)
        lines = [
            json.dumps({"preview": False, "offset": i, "result": r}).encode() for i, r in enumerate(hits)
        ]
        body = [line + b"\n" for line in lines[:2]] + [bad + b"\n" for bad in extra]
        body += [line + b"\n" for line in lines[2:]]
        if srv.piece_bytes:
            data = b"".join(body)
            body = [data[i : i + srv.piece_bytes] for i in range(0, len(data), srv.piece_bytes)]
        for piece in body:  # one write each: the poller reads a real stream
            self.wfile.write(piece)
            self.wfile.flush()
            if srv.piece_bytes:
                time.sleep(0.0005)  # apart on the wire, so reads see the pieces

    def _begin(self, status: int) -> None:
        # HTTP/1.0 and no length: the body ends when the server closes, as a stream of unknown size.
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()


@contextmanager
def serving(server: _Recording) -> Iterator[_Recording]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Intake:
    """The hub's log intake (template miner, counts, store) on a SQLite state database."""

    engine: sa.Engine
    intake: LogIntake
    metrics: HubMetrics
    logs: LogStore = field(init=False)

    def __post_init__(self) -> None:
        self.logs = LogStore(self.engine)

    def messages(self, agent: str) -> list[str]:
        """Every stored line of `agent`, oldest first (duplicates kept: the tests count them)."""
        c = log_lines.c
        with self.engine.connect() as db:
            rows = db.execute(sa.select(c.message).where(c.agent == agent).order_by(c.ts_ms, c.id)).all()
        return [r[0] for r in rows]

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


_MIGRATED: list[Path] = []  # one migrated state database per test process, copied for each test


def _fresh_state(path: Path) -> sa.Engine:
    """A state database at head at `path`: a copy of one migrated once (migrating costs ~0.5 s a test)."""
    if not _MIGRATED:
        where = Path(tempfile.mkdtemp(prefix="outpost-pollers-"))
        atexit.register(shutil.rmtree, where, ignore_errors=True)
        template = where / "state.sqlite"
        engine = migrated_engine(f"sqlite:///{template}")
        with engine.connect() as db:
            db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _MIGRATED.append(template)
    shutil.copyfile(_MIGRATED[0], path)
    return create_engine(f"sqlite:///{path}")


@asynccontextmanager
async def log_intake(tmp_path: Path) -> AsyncIterator[Intake]:
    engine = _fresh_state(tmp_path / "state.sqlite")
    store = EmbeddedStore(tmp_path / "store", EmbeddedStoreConfig())
    store.open()
    metrics = HubMetrics()
    cfg = LogsConfig(counts_interval_s=3600)
    logs, lm = LogStore(engine), LogMetrics(metrics.registry)
    counts = TemplateCounts(logs, store, cfg, lm)
    intake = LogIntake(logs, counts, cfg, lm, tmp_path / "logs")
    await counts.start()
    await intake.start()
    try:
        yield Intake(engine, intake, metrics)
    finally:
        await intake.aclose()
        await counts.aclose()
        store.close()
        engine.dispose()
