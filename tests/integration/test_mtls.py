"""The hub's gRPC ingest accepts only client certificates its CA signed and that are valid now."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import numpy as np
import pytest

from agent.transport.grpc import GrpcTransport
from hub.identity import pki
from shared import codec
from shared.errors import TransientError
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.support.outpost import HubHandle

pytestmark = pytest.mark.integration


def _envelope(seq: int = 1, points: int = 3) -> bytes:
    ts = np.arange(1, points + 1, dtype=np.int64) * 1000 + 1_700_000_000_000
    return codec.encode(Batch(42, seq, (SeriesPoints(SeriesKey.of("m"), ts, np.ones(points)),)))


def _transport(hub: HubHandle, pair: pki.CertPair, ca_pem: bytes | None = None) -> GrpcTransport:
    return GrpcTransport(
        hub.grpc_address,
        ca_pem=ca_pem or hub.ca.cert.read_bytes(),
        cert_pem=pair.cert_pem,
        key_pem=pair.key_pem,
        server_name="localhost",
        timeout_s=5,
    )


async def test_certificate_signed_by_the_hub_ca_is_accepted_and_names_the_agent(hub: HubHandle) -> None:
    t = _transport(hub, pki.issue(hub.ca, "rack7", agent_uri="dc1/rack7"))
    await t.start()
    try:
        result = await t.send(_envelope(points=3))
    finally:
        await t.aclose()
    assert (result.accepted_points, result.duplicate) == (3, False)
    agents = hub.get("/api/v1/agents")["agents"]
    assert [(a["id"], a["points_received"]) for a in agents] == [("dc1/rack7", 3)]


async def test_resending_an_acknowledged_batch_is_a_duplicate_and_stores_nothing(hub: HubHandle) -> None:
    t = _transport(hub, pki.issue(hub.ca, "a1", agent_uri="s/a1"))
    await t.start()
    try:
        first = await t.send(_envelope(seq=1))
        again = await t.send(_envelope(seq=1))
    finally:
        await t.aclose()
    assert (first.duplicate, again.duplicate, again.accepted_points) == (False, True, 0)
    (agent,) = hub.get("/api/v1/agents")["agents"]
    assert (agent["points_received"], agent["batches_received"], agent["duplicates"]) == (3, 1, 1)


async def test_connection_without_client_certificate_is_refused(hub: HubHandle) -> None:
    creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes())
    async with grpc.aio.secure_channel(
        hub.grpc_address, creds, options=[("grpc.ssl_target_name_override", "localhost")]
    ) as ch:
        push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await push(codec.push_request(_envelope()), timeout=5)
    assert exc.value.code() is grpc.StatusCode.UNAVAILABLE
    assert hub.get("/api/v1/agents")["agents"] == []


async def test_certificate_from_another_ca_is_refused(hub: HubHandle, tmp_path: Path) -> None:
    other = pki.CaPaths(tmp_path / "other-ca")
    pki.init_ca(other, "Mallory CA")
    t = _transport(hub, pki.issue(other, "evil", agent_uri="s/evil"))
    await t.start()
    try:
        with pytest.raises(TransientError):
            await t.send(_envelope())
    finally:
        await t.aclose()
    assert hub.get("/api/v1/agents")["agents"] == []


async def test_expired_certificate_is_refused(hub: HubHandle) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    t = _transport(hub, pki.issue(hub.ca, "old", agent_uri="s/old", days=1, not_before=past))
    await t.start()
    try:
        with pytest.raises(TransientError):
            await t.send(_envelope())
    finally:
        await t.aclose()
    assert hub.get("/api/v1/agents")["agents"] == []


async def test_missing_readings_sent_as_nan_are_served_as_null(hub: HubHandle) -> None:
    t = _transport(hub, pki.issue(hub.ca, "n1", agent_uri="s/n1"))
    ts = np.arange(1, 4, dtype=np.int64) * 1000 + 1_700_000_000_000
    values = np.array([1.5, np.nan, np.inf])
    await t.start()
    try:
        await t.send(codec.encode(Batch(1, 1, (SeriesPoints(SeriesKey.of("m"), ts, values),))))
    finally:
        await t.aclose()
    (series,) = hub.get("/api/v1/query", metric="m", start=str(ts[0]), end=str(ts[-1]))["series"]
    assert series["points"] == [[int(ts[0]), 1.5], [int(ts[1]), None], [int(ts[2]), None]]
