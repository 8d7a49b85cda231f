"""A hub whose InfluxDB is down acknowledges nothing, tells agents to retry, and stores once it is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from agent.transport.grpc import GrpcTransport
from hub.identity import pki
from shared import codec
from shared.errors import TransientError
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.store.conftest import start_victoria_metrics
from tests.support.outpost import start_hub
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e


def _metric(api_url: str, line_start: str) -> float:
    for line in httpx.get(api_url + "/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_no_ack_while_influxdb_is_down_then_the_retry_is_stored(tmp_path: Path) -> None:
    vm_port = free_port()
    store = {"kind": "influx", "url": f"http://127.0.0.1:{vm_port}", "bucket": "outpost", "write_timeout": 1}
    hub = start_hub(tmp_path, extra={"store": store})
    vm = None
    try:
        pair = pki.issue(hub.ca, "a1", agent_uri="s/a1")
        t = GrpcTransport(
            hub.grpc_address,
            ca_pem=hub.ca.cert.read_bytes(),
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
            server_name="localhost",
            timeout_s=10,
        )
        ts = np.arange(1, 6, dtype=np.int64) * 1000 + 1_700_000_000_000
        envelope = codec.encode(Batch(7, 1, (SeriesPoints(SeriesKey.of("m"), ts, np.arange(5.0)),)))
        await t.start()
        try:
            with pytest.raises(TransientError) as exc:
                await t.send(envelope)
            assert exc.value.retry_after_s > 0
            assert hub.get("/api/v1/agents")["agents"] == []
            assert _metric(hub.api_url, 'outpost_hub_store_errors_total{kind="transient"}') >= 1
            vm = start_victoria_metrics(tmp_path / "vm", vm_port)
            result = await t.send(envelope)
        finally:
            await t.aclose()
        assert (result.accepted_points, result.duplicate) == (5, False)
        (agent,) = hub.get("/api/v1/agents")["agents"]
        assert (agent["points_received"], agent["gaps"]) == (5, 0)
        log = hub.service.log()
        assert "store down: agents told to retry" in log and "store back after" in log
    finally:
        hub.stop()
        if vm is not None:
            vm.stop()
