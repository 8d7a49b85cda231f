"""A full disk never stops delivery: acks the disk refuses are retried, workers live on, and a stage
task that dies anyway shows in the agent's health."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config import AgentConfig, SpoolConfig
from agent.outbox.deliver import Deliverer
from agent.outbox.spool import Spool
from agent.runtime import Agent
from agent.transport.grpc import GrpcTransport
from shared.clock import SystemClock
from tests.support.outpost import HubHandle, wait_for
from tests.support.tmpfs import fill, mounted_tmpfs
from tests.transport.items import metrics_item

pytestmark = pytest.mark.integration

BATCHES = 40
POINTS = 100


def _transport(hub: HubHandle, tmp: Path) -> GrpcTransport:
    tls = hub.issue_agent("full", tmp, site="dc1")
    return GrpcTransport(
        hub.grpc_address,
        ca_pem=Path(tls["ca_file"]).read_bytes(),
        cert_pem=Path(tls["cert_file"]).read_bytes(),
        key_pem=Path(tls["key_file"]).read_bytes(),
        server_name="localhost",
        timeout_s=5,
    )


async def _wait(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_acks_refused_by_a_full_disk_are_retried_and_every_batch_reaches_the_hub_once(
    hub: HubHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures: Counter[str] = Counter()

    @contextlib.contextmanager
    def guard(stage: str) -> Iterator[None]:
        try:
            yield
        except Exception:
            failures[stage] += 1

    with mounted_tmpfs(tmp_path / "mnt", "2m") as mnt:
        # One big segment: nothing is deleted (which would free space) while the disk is full.
        spool = Spool(mnt / "spool", SpoolConfig.model_construct(segment_bytes=64 * 1024**2))
        spool.open()
        for seq in range(1, BATCHES + 1):
            spool.put(metrics_item(seq, points=POINTS, epoch=5))
        filler = fill(mnt)
        with pytest.raises(OSError) as nospace, (mnt / "probe").open("wb") as probe:
            probe.write(b"x" * 8192)
            probe.flush()
        assert nospace.value.errno == errno.ENOSPC

        caplog.set_level(logging.INFO, logger="agent.outbox.spool")
        transport = _transport(hub, tmp_path)
        await transport.start()
        deliverer = Deliverer(spool, transport, SystemClock(), workers=2, guard=guard)
        deliverer.start()
        try:
            await _wait(lambda: spool.pending() == 0 and deliverer.inflight == 0, "the backlog to go out")
            assert spool.write_errors["ack"] >= BATCHES  # every ack was refused, and kept
            spool.maintain()  # still full: the retry fails again, quietly
            assert all(not t.done() for t in deliverer.tasks)

            filler.unlink()
            spool.maintain()  # space again: the kept acks are written
            assert spool.stats().records == 0
            for seq in range(BATCHES + 1, BATCHES + 11):  # and delivery goes on
                spool.put(metrics_item(seq, points=POINTS, epoch=5))
            await _wait(lambda: spool.pending() == 0 and deliverer.inflight == 0, "new batches to go out")
            assert all(not t.done() for t in deliverer.tasks)
            assert failures == Counter()  # nothing escaped into the worker loop
        finally:
            await deliverer.aclose()
            await transport.aclose()
            spool.close()

        lines = [r.getMessage() for r in caplog.records if "ack writes" in r.getMessage()]
        assert len(lines) == 2
        assert "down: [Errno 28] No space left on device" in lines[0] and "back after" in lines[1]

        again = Spool(mnt / "spool", SpoolConfig.model_construct(segment_bytes=64 * 1024**2))
        again.open()
        assert again.pending() == 0  # the retried acks reached the disk: nothing is sent twice
        again.close()

    agents = wait_for(
        lambda: [a for a in hub.get("/api/v1/agents")["agents"] if a["batches_received"] == BATCHES + 10],
        what="the hub to count every batch",
    )
    (agent,) = agents
    assert (agent["points_received"], agent["duplicates"]) == ((BATCHES + 10) * POINTS, 0)


async def test_a_delivery_worker_that_dies_makes_health_report_the_dead_stage(
    hub: HubHandle, tmp_path: Path
) -> None:
    tls = hub.issue_agent("dies", tmp_path, site="dc1")
    config = AgentConfig.model_validate(
        {
            "data_dir": str(tmp_path / "agent"),
            "hub": {"address": hub.grpc_address, "server_name": "localhost", "tls": tls, "renew_at": 0},
            "devices": [],
            "telemetry": {"listen": None},
        }
    )
    agent = Agent(config)
    await agent.start()
    try:
        await _wait(lambda: agent.deliverer.connected, "the agent to be up")
        assert agent.health()["dead_stages"] == []
        worker = agent.deliverer.tasks[0]
        worker.cancel()  # what a BaseException escaping the loop looks like from outside
        await asyncio.gather(worker, return_exceptions=True)
        health = agent.health()
        assert (health["status"], health["dead_stages"]) == ("degraded", ["deliver"])
    finally:
        await agent.aclose()
    assert agent.health()["dead_stages"] == ["deliver"]  # shutting down adds no false deaths
