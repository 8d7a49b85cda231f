"""WebSocket streams against a running hub (real uvicorn, real bus and state database) with real
`websockets` clients: authentication, subscriptions and filters, coalescing, resume, slow clients,
revoked and expired keys."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from hub.auth.rbac import Role
from tests.ws.conftest import (
    LiveHub,
    anomaly,
    closed_with,
    device_event,
    events_of,
    frames,
    open_stream,
    scrape,
    start_live_hub,
)

pytestmark = pytest.mark.integration


async def test_an_alert_posted_over_rest_reaches_an_alerts_stream_with_its_labels(live_hub: LiveHub) -> None:
    ws, answer = await open_stream(live_hub.url, live_hub.token, "/ws/alerts")
    async with ws:
        assert answer["topics"] == ["alerts"]
        body = [{"labels": {"alertname": "LinkDown", "device": "sw1", "site": "dc1"}}]
        async with httpx.AsyncClient(base_url=live_hub.http) as c:
            r = await c.post(
                "/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {live_hub.token}"}
            )
        assert r.status_code == 202, r.text
        (event,) = events_of(await frames(ws, 1))
        assert (event["topic"], event["kind"], event["data"]["change"]) == (
            "alerts",
            "alert.changed",
            "created",
        )
        assert event["data"]["alert"]["labels"]["alertname"] == "LinkDown"
        assert event["data"]["status"] == "firing" and isinstance(event["id"], int)


async def test_subprotocol_auth_and_filters_keep_only_matching_anomalies(live_hub: LiveHub) -> None:
    filters = {"severity": ["critical"], "labels": {"device": "sw1"}}
    ws, _ = await open_stream(
        live_hub.url, live_hub.token, topics=["anomalies"], filters=filters, via_subprotocol=True
    )
    async with ws:
        assert ws.subprotocol == "outpost.v1"  # the token is never echoed back
        bus = live_hub.hub.bus
        await bus.publish(anomaly(1, "warning", "sw1"))
        await bus.publish(anomaly(2, "critical", "sw2"))
        await bus.publish(anomaly(3, "critical", "sw1"))
        (event,) = events_of(await frames(ws, 1))
        assert (event["data"]["value"], event["data"]["device"], event["data"]["severity"]) == (
            3.0,
            "sw1",
            "critical",
        )
        assert event["data"]["labels"] == {"ifName": "eth3"}


async def test_a_burst_goes_out_as_a_few_frames_in_order(live_hub: LiveHub) -> None:
    ws, _ = await open_stream(live_hub.url, live_hub.token, topics=["anomalies"])
    async with ws:
        for n in range(300):
            await live_hub.hub.bus.publish(anomaly(n))
        received = await frames(ws, 300)
        values = [e["data"]["value"] for e in events_of(received)]
        assert values == [float(n) for n in range(300)]
        ids = [e["id"] for e in events_of(received)]
        assert ids == sorted(set(ids))
        assert len(received) <= 3  # one frame per 50 ms tick, not one per event


async def test_many_clients_at_once_each_get_every_event_with_the_same_ids(live_hub: LiveHub) -> None:
    streams = await asyncio.gather(
        *(open_stream(live_hub.url, live_hub.token, topics=["anomalies"]) for _ in range(40))
    )
    try:
        publish = asyncio.gather(*(live_hub.hub.bus.publish(anomaly(n)) for n in range(100)))
        got = await asyncio.gather(*(frames(ws, 100) for ws, _ in streams), publish)
        ids = [[e["id"] for e in events_of(r)] for r in got[:-1]]
        assert all(len(i) == 100 for i in ids) and all(i == ids[0] for i in ids)
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in streams))
    text = await scrape(live_hub, 'outpost_hub_ws_disconnects_total{reason="client_left"} 40.0')
    assert 'outpost_hub_ws_events_total{topic="anomalies"} 100.0' in text
    assert "outpost_hub_ws_deliveries_total 4000.0" in text


async def test_a_reconnect_with_last_event_id_gets_exactly_what_it_missed(live_hub: LiveHub) -> None:
    bus = live_hub.hub.bus
    ws, _ = await open_stream(live_hub.url, live_hub.token, topics=["anomalies"])
    async with ws:
        await bus.publish(anomaly(0))
        (seen,) = events_of(await frames(ws, 1))
    for n in range(1, 31):  # published while the client is away
        await bus.publish(anomaly(n))
    await asyncio.sleep(0.2)
    ws, answer = await open_stream(
        live_hub.url, live_hub.token, topics=["anomalies"], last_event_id=seen["id"]
    )
    async with ws:
        await bus.publish(anomaly(31))
        values = [e["data"]["value"] for e in events_of(await frames(ws, 31))]
        assert values == [float(n) for n in range(1, 32)]
        assert answer["last_event_id"] > seen["id"]


async def test_a_reconnect_older_than_the_history_is_told_to_reset(live_hub: LiveHub) -> None:
    bus = live_hub.hub.bus
    ws, _ = await open_stream(live_hub.url, live_hub.token, topics=["anomalies"])
    async with ws:
        await bus.publish(anomaly(0))
        (seen,) = events_of(await frames(ws, 1))
    for n in range(1, 1101):  # more than the history (1000 events) holds, a tick's worth at a time
        await bus.publish(anomaly(n))
        if n % 100 == 0:
            await asyncio.sleep(0.06)
    await asyncio.sleep(0.2)
    ws, _ = await open_stream(live_hub.url, live_hub.token, topics=["anomalies"], last_event_id=seen["id"])
    async with ws:
        reset = json.loads(await ws.recv())
        assert reset["type"] == "reset" and "reload" in reset["reason"]
        await bus.publish(anomaly(1101))
        (live,) = events_of(await frames(ws, 1))  # then live events, from now on
        assert live["data"]["value"] == 1101.0
    await scrape(live_hub, "outpost_hub_ws_dropped_total 0.0")  # aged out of the history, none dropped


async def test_no_or_bad_credentials_close_with_4401_and_a_token_in_the_url_is_ignored(
    live_hub: LiveHub,
) -> None:
    async with connect(live_hub.url + "/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": "opk_not-a-key"}))
        assert await closed_with(ws) == (4401, "missing or invalid token")
    async with connect(f"{live_hub.url}/ws?token={live_hub.token}") as ws:  # URLs end up in logs
        assert await closed_with(ws) == (4401, "no auth and subscribe in time")
    async with connect(live_hub.url + "/ws") as ws:
        await ws.send(json.dumps({"type": "subscribe", "topics": ["alerts"]}))
        code, reason = await closed_with(ws)
        assert code == 4401 and "auth" in reason
    protocols = [Subprotocol("outpost.v1"), Subprotocol("bearer.opk_forged")]
    async with connect(live_hub.url + "/ws", subprotocols=protocols) as ws:
        assert await closed_with(ws) == (4401, "missing or invalid token")
    await scrape(live_hub, 'outpost_hub_ws_disconnects_total{reason="unauthorized"} 4.0')


BAD_SUBSCRIBES: list[tuple[str | bytes, str]] = [
    ("not json", "frame is not JSON"),
    (b"\x00binary", "binary frames are not part of the protocol"),
    (json.dumps({"type": "subscribe", "topics": ["logs"]}), "topics: 'logs' is not one of"),
    (json.dumps({"type": "subscribe", "topics": ["alerts"], "x": 1}), "unknown fields ['x']"),
    (json.dumps({"type": "subscribe", "topics": []}), "topics: a list of 1..5"),
    (json.dumps({"type": "subscribe", "topics": ["alerts"], "last_event_id": -1}), "last_event_id"),
    (
        json.dumps({"type": "subscribe", "topics": ["alerts"], "filters": {"labels": {"a": 1}}}),
        "filters.labels",
    ),
    ("x" * 9000, "frame of 9000 characters, more than 8192"),
]


async def test_a_bad_subscribe_closes_with_4400_and_says_why(live_hub: LiveHub) -> None:
    for frame, reason in BAD_SUBSCRIBES:
        async with connect(live_hub.url + "/ws") as ws:
            await ws.send(json.dumps({"type": "auth", "token": live_hub.token}))
            await ws.send(frame)
            code, why = await closed_with(ws)
            assert code == 4400 and why.startswith(reason), (frame, why)
    await scrape(
        live_hub, f'outpost_hub_ws_disconnects_total{{reason="bad_request"}} {len(BAD_SUBSCRIBES)}.0'
    )


async def test_only_pings_are_answered_after_subscribing(live_hub: LiveHub) -> None:
    ws, _ = await open_stream(live_hub.url, live_hub.token, topics=["agents"])
    async with ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.send(json.dumps({"type": "subscribe", "topics": ["alerts"]}))
        assert await closed_with(ws) == (4400, "unexpected 'subscribe': only \"ping\" after subscribe")


async def test_alerts_path_serves_only_alerts(live_hub: LiveHub) -> None:
    async with connect(live_hub.url + "/ws/alerts") as ws:
        await ws.send(json.dumps({"type": "auth", "token": live_hub.token}))
        await ws.send(json.dumps({"type": "subscribe", "topics": ["anomalies"]}))
        code, why = await closed_with(ws)
        assert code == 4400 and "not one of ['alerts']" in why


async def test_a_client_that_stops_reading_is_cut_with_a_reason_while_another_gets_everything(
    tmp_path: Path,
) -> None:
    live = await start_live_hub(tmp_path / "hub", client_queue=4, send_timeout_s=1)
    try:
        # A client that stops reading: its small socket buffer fills, the hub's sends stall, frames queue.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window it offers
        sock.connect(("127.0.0.1", live.hub.api_port))
        # No compression: repeated text deflates to nothing and would never fill a buffer.
        stuck, _ = await open_stream(
            live.url, live.token, topics=["events"], max_queue=1, sock=sock, compression=None
        )
        fine, _ = await open_stream(live.url, live.token, topics=["events"])
        reader = asyncio.create_task(frames(fine, 3000, timeout=60))
        for n in range(3000):
            await live.hub.bus.publish(device_event(n, "d" * 8000))  # 24 MB in all: more than buffers hold
            if n % 100 == 0:
                await asyncio.sleep(0.06)  # let ticks go out
        await scrape(live, 'outpost_hub_ws_disconnects_total{reason="too_slow"} 1.0')
        assert len(events_of(await reader)) == 3000  # the other client missed nothing
        # Reading again, the slow client finds the frames it was sent, then why it was cut.
        assert await closed_with(stuck, timeout=15) in {
            (4408, "too slow: 4 frames queued and not taken"),
            (4408, "too slow: a frame not taken within 1 s"),
        }
        await fine.close()
    finally:
        await live.hub.aclose()


async def test_a_revoked_key_closes_its_stream_and_an_expiring_one_closes_when_it_expires(
    live_hub: LiveHub,
) -> None:
    hub = live_hub.hub
    now = hub.clock.now_ms()
    revoked, secret = hub.auth.keys.create("noc-a", Role.VIEWER, None, None, "test", now)
    _, expiring = hub.auth.keys.create("noc-b", Role.VIEWER, None, now + 1500, "test", now)
    ws_revoked, _ = await open_stream(live_hub.url, secret, topics=["alerts"])
    ws_expiring, _ = await open_stream(live_hub.url, expiring, topics=["alerts"], via_subprotocol=True)
    async with ws_revoked, ws_expiring:
        assert hub.auth.keys.revoke(revoked.id, hub.clock.now_ms()) is not None
        assert await closed_with(ws_revoked, timeout=15) == (4401, "token revoked")
        assert await closed_with(ws_expiring, timeout=15) == (4401, "token expired")


async def test_a_key_without_a_topics_scope_is_refused_that_topic(live_hub: LiveHub) -> None:
    hub = live_hub.hub
    now = hub.clock.now_ms()
    _, secret = hub.auth.keys.create(
        "alerts-only", Role.VIEWER, frozenset({"alerts:read"}), None, "test", now
    )
    async with connect(live_hub.url + "/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": secret}))
        await ws.send(json.dumps({"type": "subscribe", "topics": ["alerts", "anomalies"]}))
        assert await closed_with(ws) == (4403, "topic anomalies needs scope series:read")
    ws, _ = await open_stream(live_hub.url, secret, topics=["alerts"])
    await ws.close()


async def test_stopping_the_hub_tells_each_client_to_reconnect_elsewhere(tmp_path: Path) -> None:
    live = await start_live_hub(tmp_path / "hub")
    ws, _ = await open_stream(live.url, live.token, topics=["alerts"])
    stopping = asyncio.create_task(live.hub.aclose())
    assert await closed_with(ws) == (1001, "hub stopping: reconnect with last_event_id")
    await stopping


@pytest.mark.slow
async def test_a_30_s_disconnect_at_10_onsets_a_second_loses_nothing(tmp_path: Path) -> None:
    live = await start_live_hub(tmp_path / "hub", history=20_000, history_s=600)
    try:
        ws, _ = await open_stream(live.url, live.token, topics=["anomalies", "alerts"])
        async with ws:
            await live.hub.bus.publish(anomaly(0))
            (last,) = events_of(await frames(ws, 1))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(1, 301):  # 30 s at 10 onsets/s, with the alerts they raise
            await asyncio.sleep(max(0.0, start + n / 10 - loop.time()))
            await live.hub.bus.publish(anomaly(n, device=f"sw{n % 20}"))
        ws, _ = await open_stream(live.url, live.token, topics=["anomalies"], last_event_id=last["id"])
        async with ws:
            values = [e["data"]["value"] for e in events_of(await frames(ws, 300))]
        assert values == [float(n) for n in range(1, 301)]
    finally:
        await live.hub.aclose()
