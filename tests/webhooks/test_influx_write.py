"""InfluxDB's write endpoints on a running hub, spoken to by the real `influxdb-client` and plain HTTP."""

from __future__ import annotations

import base64
import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.support.outpost import HubHandle, wait_for
from tests.webhooks.conftest import WRITE_BURST, add_key, now_ms, points

pytestmark = pytest.mark.integration


def write_v2(hub: HubHandle, token: str, body: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{hub.api_url}/api/v2/write",
        params={"org": "noc", "bucket": "telegraf", "precision": "ms"},
        content=body,
        headers={"Authorization": f"Token {token}", **headers},
    )


def test_influxdb_client_writes_points_stored_under_its_keys_source(hub: HubHandle) -> None:
    token = add_key(hub, "telegraf-dc1")
    t = now_ms() - 10_000
    with InfluxDBClient(url=hub.api_url, token=token, org="noc") as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        api.write(
            "telegraf",
            record=[
                Point("cpu")
                .tag("host", "web 1")
                .field("usage_user", 12.5)
                .field("n", 3)
                .time(t, WritePrecision.MS),
                Point("cpu").tag("host", "web 1").field("usage_user", 13.5).time(t + 1000, WritePrecision.MS),
                Point("cpu").tag("host", "web 1").field("up", True).time(t + 1000, WritePrecision.MS),
                Point("cpu")
                .tag("host", "web 1")
                .field("note", "strings are skipped")
                .time(t, WritePrecision.MS),
            ],
        )
        # Seconds precision, gzip on: the client's own compression and timestamp conversion.
    with InfluxDBClient(url=hub.api_url, token=token, org="noc", enable_gzip=True) as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            "telegraf", record=f"disk,host=web\\ 1 free=7i {t // 1000}", write_precision=WritePrecision.S
        )
    assert points(hub, "cpu_usage_user", host="web 1") == {"push:telegraf-dc1": [[t, 12.5], [t + 1000, 13.5]]}
    assert points(hub, "cpu_n") == {"push:telegraf-dc1": [[t, 3.0]]}
    assert points(hub, "cpu_up") == {"push:telegraf-dc1": [[t + 1000, 1.0]]}
    assert points(hub, "disk_free") == {"push:telegraf-dc1": [[t // 1000 * 1000, 7.0]]}
    agents = {a["id"]: a for a in hub.get("/api/v1/agents")["agents"]}
    assert agents["push:telegraf-dc1"]["points_received"] == 5


def test_a_pushed_agent_tag_cannot_write_into_another_sources_series(hub: HubHandle) -> None:
    token = add_key(hub, "intruder")
    t = now_ms() - 5_000
    assert write_v2(hub, token, f"temp,agent=sw1,device=d1 c=99 {t}").status_code == 204
    assert points(hub, "temp_c") == {"push:intruder": [[t, 99.0]]}


def test_v1_write_takes_the_key_in_p_or_basic_auth(hub: HubHandle) -> None:
    token = add_key(hub, "telegraf-v1")
    t = now_ms() - 20_000
    url = f"{hub.api_url}/write"
    r = httpx.post(
        url,
        params={"db": "telegraf", "u": "x", "p": token, "precision": "s"},
        content=f"load v=1 {t // 1000}",
    )
    assert r.status_code == 204, r.text
    basic = base64.b64encode(f"telegraf:{token}".encode()).decode()
    r = httpx.post(
        url,
        params={"db": "telegraf", "precision": "ms"},
        content=gzip.compress(f"load v=2 {t + 5000}\n".encode()),
        headers={"Authorization": f"Basic {basic}", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 204, r.text
    assert points(hub, "load_v") == {"push:telegraf-v1": [[t // 1000 * 1000, 1.0], [t + 5000, 2.0]]}


def test_bad_line_answers_400_with_its_number_and_the_good_lines_are_stored(hub: HubHandle) -> None:
    token = add_key(hub, "partial")
    t = now_ms() - 30_000
    r = write_v2(hub, token, f"mem used=1 {t}\nmem used= {t + 1}\nmem used=3 {t + 2}\n")
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid"
    assert "2 of 3 lines stored; line 2:" in body["message"]
    assert points(hub, "mem_used") == {"push:partial": [[t, 1.0], [t + 2, 3.0]]}
    with InfluxDBClient(url=hub.api_url, token=token, org="noc") as client:
        with pytest.raises(InfluxDBError) as raised:
            client.write_api(write_options=SYNCHRONOUS).write("b", record="mem used=")
    assert raised.value.response.status == 400


def test_refusals_answer_like_influxdb_and_are_counted(hub: HubHandle, tmp_path: Path) -> None:
    token = add_key(hub, "refused")
    viewer = add_key(hub, "reader", role="viewer")
    assert write_v2(hub, "opk_not-a-key", "m v=1").status_code == 401
    assert write_v2(hub, viewer, "m v=1").status_code == 403
    assert httpx.post(f"{hub.api_url}/api/v2/write", content="m v=1").status_code == 401
    r = write_v2(hub, token, '{"m": 1}', **{"Content-Type": "application/json"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported media type"
    assert write_v2(hub, token, "m v=1", **{"Content-Encoding": "br"}).status_code == 415
    # 26 MB of zeros unzipped from a few kB: refused by the unzipped size, not read into memory whole.
    bomb = gzip.compress(b"0" * 26_000_000)
    r = write_v2(hub, token, bomb, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413 and r.json()["code"] == "request too large"
    assert write_v2(hub, token, b"m v=1 " + b"1" * 25_000_000).status_code == 413
    assert write_v2(hub, token, b"not gzip", **{"Content-Encoding": "gzip"}).status_code == 400
    r = httpx.post(
        f"{hub.api_url}/api/v2/write",
        params={"precision": "fortnight"},
        content="m v=1",
        headers={"Authorization": f"Token {token}"},
    )
    assert r.status_code == 400 and "precision" in r.json()["message"]
    metrics = httpx.get(f"{hub.api_url}/metrics").text
    for reason in ("unsupported_media_type", "request_too_large", "invalid", "precision"):
        assert f'outpost_hub_ingest_rejected_total{{reason="{reason}",transport="influx_v2"}}' in metrics


def test_sixteen_clients_at_once_all_points_counted(hub: HubHandle) -> None:
    tokens = [add_key(hub, f"fleet-{i}") for i in range(4)]
    t = now_ms() - 60_000
    per_request = 200

    def push(i: int) -> int:
        lines = "\n".join(f"net,if=eth{j % 10} rx={j}i,tx={i} {t + j}" for j in range(per_request))
        return write_v2(hub, tokens[i % 4], lines).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(push, range(32)))
    assert codes == [204] * 32
    body = hub.get("/api/v1/query", metric="net_rx", start="-1d", end="now")
    per_source: dict[str, int] = {}
    for series in body["series"]:
        per_source[series["labels"]["agent"]] = per_source.get(series["labels"]["agent"], 0) + len(
            series["points"]
        )
    # Each source wrote 8 requests of the same 200 (series, timestamp) pairs: 200 distinct rx points.
    assert per_source == {f"push:fleet-{i}": per_request for i in range(4)}
    agents = {a["id"]: a for a in hub.get("/api/v1/agents")["agents"]}
    assert [agents[f"push:fleet-{i}"]["points_received"] for i in range(4)] == [8 * 2 * per_request] * 4
    assert [agents[f"push:fleet-{i}"]["gaps"] for i in range(4)] == [0] * 4


def test_telegraf_http_output_json_and_line_protocol_are_stored(hub: HubHandle) -> None:
    token = add_key(hub, "telegraf-http")
    t_s = now_ms() // 1000 - 50
    # Telegraf's JSON serializer, batch format, default json_timestamp_units (seconds).
    batch = {
        "metrics": [
            {
                "fields": {"load1": 0.5, "n_cpus": 4},
                "name": "system",
                "tags": {"host": "db1"},
                "timestamp": t_s,
            },
            {
                "fields": {"uptime_format": "1 day"},
                "name": "system",
                "tags": {"host": "db1"},
                "timestamp": t_s,
            },
            {"fields": {}, "name": "broken", "tags": {}, "timestamp": t_s},
        ]
    }
    url = f"{hub.api_url}/webhooks/telegraf"
    auth = {"Authorization": f"Token {token}"}
    r = httpx.post(url, json=batch, headers=auth)
    assert r.status_code == 400 and "2 of 3 lines stored; line 3: fields must be a non-empty object" in r.text
    single = {"fields": {"load1": 0.75}, "name": "system", "tags": {"host": "db1"}, "timestamp": t_s + 10}
    assert httpx.post(url, json=single, headers=auth).status_code == 204
    assert (
        httpx.post(url, content=b"{", headers={**auth, "Content-Type": "application/json"}).status_code == 400
    )
    line = f"system,host=db1 load1=1.25 {(t_s + 20) * 10**9}"
    assert httpx.post(url, content=line, headers={**auth, "Content-Type": "text/plain"}).status_code == 204
    assert points(hub, "system_load1") == {
        "push:telegraf-http": [[t_s * 1000, 0.5], [(t_s + 10) * 1000, 0.75], [(t_s + 20) * 1000, 1.25]]
    }
    assert points(hub, "system_n_cpus") == {"push:telegraf-http": [[t_s * 1000, 4.0]]}


def test_a_source_over_its_write_rate_gets_429_with_retry_after(hub: HubHandle) -> None:
    token = add_key(hub, "too-eager")
    other = add_key(hub, "patient")
    t = now_ms() - 70_000
    with httpx.Client() as client:
        codes = []
        for i in range(WRITE_BURST * 4):  # the burst, plus what refills (5/s) while a slow machine sends
            r = client.post(
                f"{hub.api_url}/api/v2/write",
                content=f"eager v={i} {t + i}",
                headers={"Authorization": f"Token {token}"},
            )
            codes.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                break
    assert codes[-1] == 429 and set(codes[:-1]) == {204} and len(codes) > WRITE_BURST
    # The limit is the source's own: another key writes on.
    assert write_v2(hub, other, f"eager v=1 {t}").status_code == 204
    metrics = httpx.get(f"{hub.api_url}/metrics").text
    assert 'by="principal",group="write"' in metrics


def test_pushed_series_reach_the_alert_rules_over_the_bus(hub: HubHandle) -> None:
    token = add_key(hub, "bmc-exporter")
    t = now_ms() - 2_000
    # `hw_health` (0 OK, 1 warning, 2 critical) is the series the hardware-health rule watches.
    assert write_v2(hub, token, f"hw,device=psu-7 health=2 {t}").status_code == 204
    alerts = wait_for(
        lambda: [
            a for a in hub.get("/api/v1/alerts", limit=1000)["alerts"] if a["labels"].get("device") == "psu-7"
        ],
        what="an alert from the pushed health series",
    )
    (alert,) = alerts
    assert alert["status"] == "firing" and alert["severity"] == "critical"
    assert alert["labels"]["agent"] == "push:bmc-exporter" and alert["labels"]["metric"] == "hw_health"
