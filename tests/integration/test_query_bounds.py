"""Queries against a real hub process: bounded parameters (400 at once), linear-time regexes, downsampling
that follows the data, event kinds filtered before the limit, and queries that never starve ingest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from hub.identity import pki
from shared import codec
from shared.model import Batch, BatchClass, Event, SeriesKey, SeriesPoints, Severity
from tests.support.outpost import HubHandle, start_hub, wait_for

pytestmark = pytest.mark.integration

MINUTE = 60_000
# A label value long enough that `(.*.*)*X` backtracks for hours in Python's `re`.
LONG = "rack-a-row-b-position-c-sensor-0123456789"
SENSORS = [f"{LONG}-{i}" for i in range(3)]


class Fleet:
    """One hub for the module, with one agent's data: 61 points per series at 1/min, and events."""

    def __init__(self, hub: HubHandle, t0: int) -> None:
        self.hub = hub
        self.t0 = t0  # first point; the last is t0 + 60 min
        self.headers = {"Authorization": f"Bearer {hub.token}"}
        pair = pki.issue(hub.ca, "edge-q", agent_uri="s/edge-q")
        self.creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)
        self.seq = 0

    def get(self, path: str, timeout: float = 5.0, **params: Any) -> httpx.Response:
        return httpx.get(self.hub.api_url + path, params=params, headers=self.headers, timeout=timeout)

    async def push(self, batches: list[Batch]) -> None:
        async with grpc.aio.secure_channel(
            self.hub.grpc_address, self.creds, options=[("grpc.ssl_target_name_override", "localhost")]
        ) as ch:
            push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
            for b in batches:
                await push(codec.push_request(codec.encode(b)), timeout=10)

    def batch(self, series: tuple[SeriesPoints, ...] = (), events: tuple[Event, ...] = ()) -> Batch:
        self.seq += 1
        cls = BatchClass.EVENTS if events else BatchClass.METRICS
        return Batch(1, self.seq, series, events=events, batch_class=cls)

    def points_received(self) -> int:
        for a in self.get("/api/v1/agents").json()["agents"]:
            if a["id"] == "s/edge-q":
                return int(a["points_received"])
        return 0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    hub = start_hub(tmp_path_factory.mktemp("query-bounds"))
    try:
        t0 = (int(time.time() * 1000) - 2 * 3_600_000) // MINUTE * MINUTE
        f = Fleet(hub, t0)
        ts = t0 + np.arange(61, dtype=np.int64) * MINUTE
        series = tuple(
            SeriesPoints(SeriesKey.of("temp", {"sensor": s}), ts, np.arange(61, dtype=np.float64) + i)
            for i, s in enumerate(SENSORS)
        )
        onset = Event.of(t0 + 1000, "anomaly.onset", Severity.CRITICAL, "temp", "onset")
        traps = tuple(Event.of(t0 + 2000 + i, "trap", Severity.INFO, "sw1", "linkDown") for i in range(600))
        asyncio.run(f.push([f.batch(series), f.batch(events=(onset,)), f.batch(events=traps)]))
        wait_for(lambda: f.points_received() == 183, what="183 points stored")
        yield f
    finally:
        hub.stop()


def test_raw_points_come_back_when_they_fit_in_max_points(fleet: Fleet) -> None:
    r = fleet.get(
        "/api/v1/query",
        metric="temp",
        match=f"sensor={SENSORS[0]}",
        start=str(fleet.t0 - 30_000),
        end=str(fleet.t0 + 60 * MINUTE + 30_000),
        max_points="61",  # exactly the points present: raw, not a 61 s step
    )
    assert r.status_code == 200, r.text
    (s,) = r.json()["series"]
    assert s["points"] == [[fleet.t0 + k * MINUTE, float(k)] for k in range(61)]


def test_a_range_from_the_epoch_is_fitted_to_the_hour_of_data_present(fleet: Fleet) -> None:
    r = fleet.get("/api/v1/query", metric="temp", match=f"sensor={SENSORS[1]}", start="0", max_points="20")
    assert r.status_code == 200, r.text
    (s,) = r.json()["series"]
    # 60 min of data over 20 points: a step of about 3 min (not one bucket for 56 years).
    ts = [t for t, _ in s["points"]]
    steps = set(np.diff(ts).tolist())
    assert 18 <= len(ts) <= 20
    assert len(steps) == 1 and 180_000 <= steps.pop() <= 200_000
    assert ts[0] <= fleet.t0 < ts[1] and ts[-1] <= fleet.t0 + 60 * MINUTE
    assert sum(v for _, v in s["points"]) > 0


def test_an_anomaly_is_found_by_kind_behind_600_newer_traps(fleet: Fleet) -> None:
    r = fleet.get("/api/v1/events", start="0", kind="anomaly", limit="500")
    assert r.status_code == 200, r.text
    assert [(e["kind"], e["ts_ms"]) for e in r.json()["events"]] == [("anomaly.onset", fleet.t0 + 1000)]
    traps = fleet.get("/api/v1/events", start="0", kind="trap", limit="500").json()["events"]
    assert len(traps) == 500 and traps[0]["ts_ms"] == fleet.t0 + 2000 + 599


ABSURD = [
    ("/api/v1/query", {"metric": "temp", "start": "-99999999999999999999w"}),
    ("/api/v1/query", {"metric": "temp", "start": "-9999999999999999w"}),
    ("/api/v1/query", {"metric": "temp", "step": "99999999999999999999w"}),
    ("/api/v1/query", {"metric": "temp", "step": "9999999w"}),
    ("/api/v1/query", {"metric": "temp", "step": "0"}),
    ("/api/v1/query", {"metric": "temp", "step": "-5m"}),
    ("/api/v1/query", {"metric": "temp", "end": "9999999999999999"}),
    ("/api/v1/query", {"metric": "temp", "start": "0001-01-01T00:00:00+14:00"}),
    ("/api/v1/query", {"metric": "temp", "start": "2026-13-45"}),
    ("/api/v1/query", {"metric": "temp", "start": "1" * 5000}),
    ("/api/v1/query", {"metric": "temp", "start": "now", "end": "-1h"}),
    ("/api/v1/query", {"metric": "temp", "max_points": "0"}),
    ("/api/v1/query", {"metric": "temp", "max_points": "99999999999999999999"}),
    ("/api/v1/query", {"metric": "temp", "max_points": "many"}),
    ("/api/v1/query", {"metric": "temp", "agg": "median"}),
    ("/api/v1/query", {}),
    ("/api/v1/query", {"metric": ""}),
    ("/api/v1/query", {"metric": "m" * 1000}),
    ("/api/v1/query", {"metric": "temp", "match": [f"l{i}=v" for i in range(33)]}),
    ("/api/v1/query", {"metric": "temp", "match": "sensor=~" + "a" * 2000}),
    ("/api/v1/query", {"metric": "temp", "match": "sensor=~(?=lookahead)"}),
    ("/api/v1/query", {"metric": "temp", "match": "sensor=~a)|(b"}),
    ("/api/v1/query", {"metric": "temp", "match": "sensor=~a{5000}"}),
    ("/api/v1/query", {"metric": "temp", "match": "no operator"}),
    ("/api/v1/series", {"match": "sensor=~(?<=x)"}),
    ("/api/v1/series", {"limit": "0"}),
    ("/api/v1/series", {"limit": "-5"}),
    ("/api/v1/series", {"metric": "m" * 1000}),
    ("/api/v1/events", {"limit": "100000"}),
    ("/api/v1/events", {"kind": "k" * 1000}),
    ("/api/v1/events", {"start": "yesterday"}),
    ("/api/v1/events", {"end": "-99999999999999999999w"}),
]


def test_absurd_parameters_are_answered_400_within_a_second_and_the_hub_stays_healthy(fleet: Fleet) -> None:
    slow = []
    for path, params in ABSURD:
        t = time.monotonic()
        r = fleet.get(path, timeout=10, **params)
        took = time.monotonic() - t
        assert r.status_code == 400, (path, params, r.status_code, r.text[:300])
        assert r.json()["detail"], (path, params)
        if took > 1.0:
            slow.append((path, params, took))
    assert slow == []
    assert httpx.get(fleet.hub.api_url + "/healthz", timeout=1).json() == {"status": "ok"}
    assert fleet.get("/api/v1/series", metric="temp").json()["total"] == 3
    metrics = httpx.get(fleet.hub.api_url + "/metrics").text
    refused = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("outpost_hub_api_rejected_total{") and 'reason="bad_request"' in line
    )
    assert refused == len(ABSURD)


def test_a_re2_rejection_says_why(fleet: Fleet) -> None:
    r = fleet.get("/api/v1/series", match="sensor=~(?=x)")
    assert r.status_code == 400
    assert "not a valid RE2 regex: invalid perl operator: (?=" in r.json()["detail"]


def test_a_catastrophic_regex_answers_fast_while_healthz_and_ingest_stay_responsive(fleet: Fleet) -> None:
    async def scenario() -> tuple[list[httpx.Response], list[float], float]:
        async with httpx.AsyncClient(base_url=fleet.hub.api_url, headers=fleet.headers, timeout=10) as c:
            evil = [
                c.get("/api/v1/series", params={"match": "sensor=~(.*.*)*X"}),
                c.get("/api/v1/query", params={"metric": "temp", "match": "sensor=~(.*.*)*X", "start": "0"}),
                c.get("/api/v1/series", params={"match": "sensor!~(.*.*)*X"}),
            ]
            health: list[float] = []

            async def probe() -> None:
                for _ in range(5):
                    t = time.monotonic()
                    assert (await c.get("/healthz", timeout=1)).status_code == 200
                    health.append(time.monotonic() - t)

            t = time.monotonic()
            results = await asyncio.gather(*evil, probe())
            return list(results[:3]), health, time.monotonic() - t

    answers, health, took = asyncio.run(scenario())
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert answers[0].json() == {"series": [], "total": 0}
    assert answers[1].json()["series"] == []
    assert answers[2].json()["total"] == 3
    assert took < 1.0
    assert max(health) < 0.5


def test_many_concurrent_queries_answer_exactly_while_batches_keep_arriving(fleet: Fleet) -> None:
    """Queries run in the API's pool, decode outside the store lock with per-thread zstd contexts."""
    before = fleet.points_received()
    base = fleet.t0 + 61 * MINUTE
    late = [
        fleet.batch(
            (
                SeriesPoints(
                    SeriesKey.of("load", {"n": str(k)}), base + np.arange(50) * 1000, np.full(50, k * 1.0)
                ),
            )
        )
        for k in range(40)
    ]

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=fleet.hub.api_url, headers=fleet.headers, timeout=30) as c:
            queries = [
                c.get(
                    "/api/v1/query",
                    params={"metric": "temp", "start": str(fleet.t0), "end": str(fleet.t0 + 60 * MINUTE)},
                )
                for _ in range(40)
            ]
            got = await asyncio.gather(fleet.push(late), *queries)
            return list(got[1:])

    answers = asyncio.run(scenario())
    assert [r.status_code for r in answers] == [200] * 40
    for r in answers:
        series = r.json()["series"]
        assert [s["labels"]["sensor"] for s in series] == SENSORS
        assert all(
            [p[1] for p in s["points"]] == [float(k + i) for k in range(61)] for i, s in enumerate(series)
        )
    wait_for(lambda: fleet.points_received() == before + 40 * 50, what="every late batch stored")
    loads = fleet.get("/api/v1/query", metric="load", start=str(base), end=str(base + 60_000)).json()[
        "series"
    ]
    assert sorted(int(s["labels"]["n"]) for s in loads) == list(range(40))
    assert all(len(s["points"]) == 50 for s in loads)
