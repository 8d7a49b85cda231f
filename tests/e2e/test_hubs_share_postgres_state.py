"""Two hub processes behind one address share their state in PostgreSQL: counts stay exact across both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.transport.grpc import GrpcTransport
from hub.identity import pki
from shared import codec
from shared.model import Batch, SeriesKey, SeriesPoints
from tests.support.outpost import start_hub
from tests.support.postgres import Postgres

pytestmark = pytest.mark.e2e


def _envelope(seq: int) -> bytes:
    ts = 1_800_000_000_000 + seq * 10_000 + np.arange(4, dtype=np.int64)
    return codec.encode(Batch(9, seq, (SeriesPoints(SeriesKey.of("m"), ts, np.full(4, float(seq))),)))


async def test_batches_spread_over_two_hubs_are_counted_once_in_shared_state(tmp_path: Path) -> None:
    pg = Postgres(tmp_path / "logs")
    hubs = []
    try:
        url = pg.create_database("outpost")
        ca = pki.CaPaths(tmp_path / "hub-a" / "pki")
        pki.init_ca(ca)  # both hubs trust one CA, as a real pair behind a load balancer would
        (tmp_path / "hub-b").mkdir()
        (tmp_path / "hub-b" / "pki").symlink_to(ca.root, target_is_directory=True)
        hubs = [start_hub(tmp_path, name, extra={"state_url": url}) for name in ("hub-a", "hub-b")]
        # The admin token lives in the shared state: made once (by hub-a), valid on both.
        (hubs[1].data_dir / "admin.token").write_text(hubs[0].token)
        pair = pki.issue(ca, "edge9", agent_uri="dc2/edge9")
        transports = [
            GrpcTransport(
                h.grpc_address,
                ca_pem=ca.cert.read_bytes(),
                cert_pem=pair.cert_pem,
                key_pem=pair.key_pem,
                server_name="localhost",
            )
            for h in hubs
        ]
        for t in transports:
            await t.start()
        try:
            for seq in range(1, 31):
                if seq == 12:
                    continue  # lost for now: a gap both hubs must see
                await transports[seq % 2].send(_envelope(seq))
            for seq in (3, 4, 5):  # re-sent to the other hub after a lost ack
                await transports[(seq + 1) % 2].send(_envelope(seq))
            views = [h.get("/api/v1/agents")["agents"] for h in hubs]
            await transports[0].send(_envelope(12))  # the backfill closes the gap
            closed = hubs[1].get("/api/v1/agents")["agents"]
        finally:
            for t in transports:
                await t.aclose()
    finally:
        for h in hubs:
            h.stop()
        pg.stop()
    assert views[0] == views[1]
    (agent,) = views[0]
    assert (agent["id"], agent["batches_received"], agent["points_received"]) == ("dc2/edge9", 29, 116)
    assert (agent["gaps"], agent["duplicates"]) == (1, 3)
    assert (closed[0]["batches_received"], closed[0]["gaps"]) == (30, 0)
