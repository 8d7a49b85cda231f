"""`/api/v1/logs` on a real hub process: lines pushed over gRPC (mTLS, the agents' envelope) are found by
text, source, severity and template, paged exactly by cursor, counted per template as series readable
through `/api/v1/query`, and every bad parameter is a counted 400."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from hub.identity import pki
from shared import codec
from shared.model import Batch, BatchClass, LogRecord
from tests.support.outpost import HubHandle, start_hub, wait_for

pytestmark = pytest.mark.integration

AGENT = "s/edge-logs"
LINES = 240  # 3 batches of 80


class LogHub:
    """One hub for the module with one agent's lines: 240 over 4 minutes, three shapes, two devices."""

    def __init__(self, hub: HubHandle, t0: int) -> None:
        self.hub = hub
        self.t0 = t0
        self.headers = {"Authorization": f"Bearer {hub.token}"}
        pair = pki.issue(hub.ca, "edge-logs", agent_uri=AGENT)
        self.creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.hub.api_url + path, params=params, headers=self.headers, timeout=10)

    def logs(self, **params: Any) -> dict[str, Any]:
        r = self.get("/api/v1/logs", **{"from": self.t0, "to": self.t0 + 600_000, **params})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def push(self, batches: list[Batch]) -> list[bytes]:
        async with grpc.aio.secure_channel(
            self.hub.grpc_address, self.creds, options=[("grpc.ssl_target_name_override", "localhost")]
        ) as ch:
            push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
            return [await push(codec.push_request(codec.encode(b)), timeout=10) for b in batches]


def _message(i: int) -> str:
    if i % 3 == 0:
        return f"Interface GigabitEthernet0/{i % 24} changed state to down"
    if i % 3 == 1:
        return f"Accepted publickey for user{i % 5} from 10.1.{i % 9}.{i} port {40000 + i} ssh2"
    return f"kernel: temperature {40 + i % 30} C above threshold on sensor {i % 4}"


@pytest.fixture(scope="module")
def loghub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogHub]:
    hub = start_hub(tmp_path_factory.mktemp("logs-api"), extra={"logs": {"counts_interval_s": 0.2}})
    try:
        t0 = (int(time.time() * 1000) - 3_600_000) // 60_000 * 60_000
        f = LogHub(hub, t0)
        batches = []
        for b in range(3):
            records = tuple(
                LogRecord(t0 + i * 1000, t0 + i * 1000 + 7, _message(i), severity=3 + i % 4,
                          host=f"h{i % 2}", app="sshd" if i % 3 == 1 else "kernel", device=f"sw{i % 2}")
                for i in range(b * 80, (b + 1) * 80)
            )  # fmt: skip
            batches.append(Batch(1, b + 1, logs=records, batch_class=BatchClass.LOGS))
        asyncio.run(f.push([*batches, batches[0]]))  # the first once more: a re-send stores nothing
        yield f
    finally:
        hub.stop()


def test_pushed_lines_are_found_by_text_source_severity_and_template(loghub: LogHub) -> None:
    every = loghub.logs(limit=1000)["logs"]
    assert len(every) == LINES and every[0]["ts_ms"] == loghub.t0 + (LINES - 1) * 1000
    assert {line["agent"] for line in every} == {AGENT}
    down = loghub.logs(q="changed AND down", limit=1000)["logs"]
    assert len(down) == LINES // 3 and all("changed state to down" in line["message"] for line in down)
    assert loghub.logs(q='"publickey for user3"', limit=1000)["logs"][0]["message"].startswith("Accepted")
    sw1_sshd = loghub.logs(device="sw1", app="sshd", limit=1000)["logs"]
    assert len(sw1_sshd) == 40 and {line["device"] for line in sw1_sshd} == {"sw1"}
    errors = loghub.logs(severity="err", limit=1000)["logs"]  # 3 and worse
    assert len(errors) == LINES // 4 and {line["severity"] for line in errors} == {3}
    assert len(loghub.logs(severity="4", limit=1000)["logs"]) == LINES // 2
    (tid,) = {line["template_id"] for line in down}
    assert len(loghub.logs(template=tid, limit=1000)["logs"]) == LINES // 3
    assert loghub.logs(agent="s/someone-else")["logs"] == []


def test_cursor_pages_cover_every_line_once_newest_first(loghub: LogHub) -> None:
    seen: list[tuple[int, int]] = []
    cursor = None
    while True:
        page = loghub.logs(limit=37, **({"cursor": cursor} if cursor else {}))
        seen += [(line["ts_ms"], line["id"]) for line in page["logs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == LINES
    assert seen == sorted(seen, reverse=True)


def test_templates_are_listed_with_exact_counts_and_counted_per_minute_as_series(loghub: LogHub) -> None:
    r = loghub.get("/api/v1/logs/templates", limit=10)
    assert r.status_code == 200, r.text
    templates = r.json()["templates"]
    assert sorted(t["count"] for t in templates) == [LINES // 3] * 3
    counts = {t["template_id"]: t["count"] for t in templates}

    def series_totals() -> dict[str, int] | None:
        q = loghub.get("/api/v1/query", metric="log_template_count", start=loghub.t0, end=loghub.t0 + 600_000)
        totals: dict[str, int] = {}
        for s in q.json()["series"]:
            assert s["labels"]["agent"] == AGENT and s["labels"]["device"] in ("sw0", "sw1")
            totals[s["labels"]["template_id"]] = totals.get(s["labels"]["template_id"], 0) + sum(
                int(v) for _, v in s["points"]
            )
        return totals if totals == counts else None

    wait_for(series_totals, timeout=20, what="log_template_count series matching the template counts")
    metrics = loghub.get("/metrics").text
    assert f"outpost_hub_logs_stored_total {float(LINES)}" in metrics
    assert "outpost_hub_logs_duplicate_total 80.0" in metrics


@pytest.mark.parametrize(
    "params",
    [
        {"q": '"unterminated'},
        {"q": "nosuchcolumn:word"},
        {"q": "x" * 257},
        {"q": "bad\x00byte"},
        {"limit": "0"},
        {"limit": "1001"},
        {"severity": "9"},
        {"severity": "loud"},
        {"cursor": "not-a-cursor"},
        {"from": "yesterday-ish"},
        {"device": ""},
        {"app": "a" * 300},
    ],
    ids=lambda p: next(iter(p)),
)
def test_a_bad_parameter_is_a_400_saying_which(loghub: LogHub, params: dict[str, str]) -> None:
    r = loghub.get("/api/v1/logs", **params)
    assert r.status_code == 400, r.text
    name = next(iter(params))
    assert name in r.json()["detail"] or "search" in r.json()["detail"] or "time" in r.json()["detail"]


def test_bad_requests_are_counted_and_templates_limit_is_bounded(loghub: LogHub) -> None:
    assert loghub.get("/api/v1/logs/templates", limit="100000").status_code == 400
    metrics = loghub.get("/metrics").text
    assert 'outpost_hub_api_rejected_total{endpoint="logs_templates",reason="bad_request"} 1.0' in metrics


async def _push_as(hub: HubHandle, name: str, batches: list[Batch]) -> None:
    pair = pki.issue(hub.ca, name, agent_uri=f"s/{name}")
    creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)
    async with grpc.aio.secure_channel(
        hub.grpc_address, creds, options=[("grpc.ssl_target_name_override", "localhost")]
    ) as ch:
        push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
        for b in batches:
            await push(codec.push_request(codec.encode(b)), timeout=20)


def test_many_agents_pushing_at_once_while_clients_page_lose_and_double_no_line(loghub: LogHub) -> None:
    # Runs last in the module: its lines sit after the others' window and carry their own word.
    t1 = loghub.t0 + 900_000
    agents, batches, per_batch = 8, 4, 25

    def batch(a: int, b: int) -> Batch:
        first = (a * batches + b) * per_batch
        records = tuple(
            LogRecord(t1 + first + i, t1, f"burst {a} job {first + i} finished in {i} ms")
            for i in range(per_batch)
        )
        return Batch(1, b + 1, logs=records, batch_class=BatchClass.LOGS)

    async def run() -> None:
        async def page_all() -> None:
            async with httpx.AsyncClient(base_url=loghub.hub.api_url, headers=loghub.headers) as client:
                seen: list[int] = []
                cursor = None
                while True:
                    params = {"from": t1, "to": t1 + 60_000, "q": "burst", "limit": 17}
                    r = await client.get(
                        "/api/v1/logs", params={**params, **({"cursor": cursor} if cursor else {})}
                    )
                    assert r.status_code == 200, r.text
                    seen += [line["id"] for line in r.json()["logs"]]
                    cursor = r.json()["next_cursor"]
                    if cursor is None:
                        assert len(seen) == len(set(seen))  # pages taken while lines arrive: none twice
                        return

        pushes = [
            _push_as(loghub.hub, f"burst-{a}", [batch(a, b) for b in range(batches)]) for a in range(agents)
        ]
        await asyncio.gather(*pushes, *(page_all() for _ in range(4)))

    asyncio.run(run())
    total = agents * batches * per_batch
    lines = loghub.logs(**{"from": t1, "to": t1 + 60_000}, q="burst", limit=1000)["logs"]
    assert len(lines) == len({line["id"] for line in lines}) == total
    assert {line["agent"] for line in lines} == {f"s/burst-{a}" for a in range(agents)}
    assert sorted(int(line["message"].split()[3]) for line in lines) == list(range(total))
