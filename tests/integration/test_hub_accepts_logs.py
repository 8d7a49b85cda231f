"""A real hub decodes, stores and acknowledges a batch of log records, and dedupes its replay.

Until the hub keeps log lines itself, this is the contract the agent's syslog receiver relies on: a LOGS
batch is acknowledged like any other (so the spool forgets it), never refused and never a crash.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest

from hub.identity import pki
from shared import codec
from shared.model import Batch, BatchClass, LogRecord
from tests.support.outpost import start_hub, wait_for
from tests.transport.natsd import start_nats
from tests.transport.test_nats import _agents, _prepare, _start_nats_hub, _transport

pytestmark = pytest.mark.integration


def _stored_batches(api_url: str) -> float:
    for line in httpx.get(api_url + "/metrics").text.splitlines():
        if line.startswith("outpost_hub_ingest_batches_total{") and 'result="stored"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.slow  # make test covers the ack in test_syslog_agent.py (a real agent's LOGS batches, no gaps)
async def test_a_hub_acks_a_batch_of_log_records_and_dedupes_its_replay(tmp_path: Path) -> None:
    logs = tuple(
        LogRecord(
            1_700_000_000_000 + i, 1_700_000_000_100 + i, f"eth{i} down ✗", 4, 3, "sw1", "ifmgr", device="sw1"
        )
        for i in range(50)
    )
    envelope = codec.encode(Batch(77, 1, batch_class=BatchClass.LOGS, logs=logs))
    hub = start_hub(tmp_path)
    try:
        pair = pki.issue(hub.ca, "edge", agent_uri="dc1/edge")
        creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)
        async with grpc.aio.secure_channel(
            hub.grpc_address, creds, options=[("grpc.ssl_target_name_override", "localhost")]
        ) as ch:
            push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
            first = codec.parse_push_response(await push(codec.push_request(envelope), timeout=20))
            again = codec.parse_push_response(await push(codec.push_request(envelope), timeout=20))
        assert (first.rejected_points, first.error_message, first.duplicate) == (0, "", False)
        assert (again.duplicate, again.error_message) == (True, "")
        assert _stored_batches(hub.api_url) == 1
        assert hub.service.proc.poll() is None
    finally:
        hub.stop()
    assert "Traceback" not in hub.service.log()


@pytest.mark.slow
async def test_a_batch_of_log_records_published_to_nats_is_acked_and_counted(tmp_path: Path) -> None:
    """The NATS path takes the very same envelope (slow: a nats-server and a hub for one envelope)."""
    ca = _prepare(tmp_path, "hub")
    nats = start_nats(tmp_path, ca, ["dc1/edge1"])
    hub = _start_nats_hub(tmp_path, "hub", nats)
    t = _transport(tmp_path, ca, "dc1/edge1", nats)
    logs = (LogRecord(1_700_000_000_000, 1_700_000_000_001, "fan 2 failed", 0, 2, "bmc7", "ipmi"),)
    try:
        await t.start()
        result = await t.send(codec.encode(Batch(5, 1, batch_class=BatchClass.LOGS, logs=logs)))
        assert (result.rejected_points, result.error_message) == (0, "")
        wait_for(lambda: _agents(hub).get("dc1/edge1", {}).get("batches_received") == 1, what="counted")
    finally:
        await t.aclose()
        hub.stop()
        nats.stop()
