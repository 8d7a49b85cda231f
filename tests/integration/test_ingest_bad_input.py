"""Malformed envelopes are refused with INVALID_ARGUMENT, counted by reason, and never hurt the hub."""

from __future__ import annotations

import grpc
import httpx
import pytest

from hub.identity import pki
from shared import codec
from shared.pb.outpost.v1 import batch_pb2 as pb
from tests.support.outpost import HubHandle
from tests.support.wire import raw_single_series_envelope

pytestmark = pytest.mark.integration


def _metric(hub: HubHandle, name: str, **labels: str) -> float:
    text = httpx.get(hub.api_url + "/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not exported")


BAD = {
    "bad_compression": pb.Envelope(
        schema_version=1, encoding=2, batch_class=1, payload=b"not zstd", uncompressed_size=9
    ).SerializeToString(),
    "unknown_version": pb.Envelope(schema_version=9).SerializeToString(),
    "oversized": pb.Envelope(
        schema_version=1, encoding=2, batch_class=1, uncompressed_size=2**31 - 1
    ).SerializeToString(),
    "non_monotonic": raw_single_series_envelope([5, 5, -1]),
}


async def test_bad_envelopes_are_rejected_counted_and_the_hub_keeps_serving(hub: HubHandle) -> None:
    pair = pki.issue(hub.ca, "fuzzer", agent_uri="s/fuzzer")
    creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)
    async with grpc.aio.secure_channel(
        hub.grpc_address, creds, options=[("grpc.ssl_target_name_override", "localhost")]
    ) as ch:
        push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
        for reason, envelope in BAD.items():
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await push(codec.push_request(envelope), timeout=5)
            assert exc.value.code() is grpc.StatusCode.INVALID_ARGUMENT, reason
            assert reason in (exc.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await push(b"\xff\xff garbage request", timeout=5)
        assert exc.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    rejected = "outpost_hub_ingest_rejected_total"
    assert _metric(hub, rejected, transport="grpc", reason="malformed_request") == 1.0
    for reason in BAD:
        assert _metric(hub, "outpost_hub_ingest_rejected_total", transport="grpc", reason=reason) == 1.0
    assert _metric(hub, "outpost_hub_ingest_rejected_points_total", transport="grpc") == 3.0
    assert httpx.get(hub.api_url + "/healthz").json() == {"status": "ok"}
    assert hub.service.proc.poll() is None
    assert hub.get("/api/v1/series")["total"] == 0
