"""The chaos scenario: a known sequence streams agent → hub while hub, link and agent fail in turn.

Every fault is real: SIGKILL of the hub and of the agent (processes), a cut of the TCP link (LinkProxy).
At the end the hub's store must hold every point of the sequence exactly once and the agent's spool
must be empty.
"""

from __future__ import annotations

import random
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from agent.collect.sequence import METRIC
from agent.outbox.spool import Spool
from tests.chaos.proxy import LinkProxy
from tests.support.outpost import HubHandle, start_agent, wait_for
from tests.support.procs import free_port


@dataclass
class Sequence:
    """What the agent streams: `series` series of `ticks` points, `step_ms` apart, from `start_ms`."""

    series: int
    ticks: int
    ticks_per_poll: int
    interval_s: float = 0.1
    step_ms: int = 1000
    start_ms: int = field(default_factory=lambda: (int(time.time()) - 7200) * 1000)

    @property
    def points(self) -> int:
        return self.series * self.ticks

    def device(self) -> dict[str, Any]:
        return {
            "kind": "sequence",
            "series": self.series,
            "ticks": self.ticks,
            "ticks_per_poll": self.ticks_per_poll,
            "interval_s": self.interval_s,
            "start_ms": self.start_ms,
            "step_ms": self.step_ms,
        }


def stored(hub: HubHandle, seq: Sequence, agg: str) -> dict[str, list[tuple[int, float]]]:
    """Per series, the stored points aggregated per tick (`count` exposes duplicates, `avg` values)."""
    r = hub.get(
        "/api/v1/query",
        metric=METRIC,
        start=str(seq.start_ms),
        end=str(seq.start_ms + seq.ticks * seq.step_ms),
        step=str(seq.step_ms),
        agg=agg,
        max_points=1_000_000,
    )
    return {s["labels"]["series"]: [(int(t), float(v)) for t, v in s["points"]] for s in r["series"]}


def stored_count(hub: HubHandle, seq: Sequence) -> int:
    try:
        return int(sum(v for pts in stored(hub, seq, "count").values() for _, v in pts))
    except (httpx.HTTPError, OSError):
        return -1  # the hub is down right now


def hub_account(hub: HubHandle) -> str:
    """What the hub counted (per agent points, batches, gaps) and refused since its last start."""
    try:
        agents = hub.get("/api/v1/agents")["agents"]
        metrics = httpx.get(hub.api_url + "/metrics", timeout=5).text
    except (httpx.HTTPError, OSError) as exc:
        return f"unreachable ({exc})"
    refused = [ln for ln in metrics.splitlines() if ln.startswith("outpost_hub_ingest_rejected_total")]
    return f"agents {agents}; refused since the last hub start: {refused or 'none'}"


def agent_pending(telemetry_port: int) -> int | None:
    try:
        health = httpx.get(f"http://127.0.0.1:{telemetry_port}/healthz", timeout=2).json()
        return int(health["outbox_pending"])
    except (httpx.HTTPError, OSError, KeyError, ValueError):
        return None


@dataclass
class Chaos:
    """Runs the scenario; `restart_hub` brings the hub back on the same ports and data dir."""

    tmp: Path
    hub: HubHandle
    restart_hub: Callable[[], HubHandle]
    hub_endpoint_port: int
    agent_hub_section: Callable[[int], dict[str, Any]]
    seq: Sequence
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    log: list[str] = field(default_factory=list)

    def run(self, cycles: int = 1, timeout_s: float = 60.0) -> None:
        proxy = LinkProxy(self.hub_endpoint_port)
        telemetry = free_port()
        cfg = self.tmp / "agent.yaml"
        config = {
            "data_dir": str(self.tmp / "agent-data"),
            "hub": self.agent_hub_section(proxy.port),
            "devices": [self.seq.device()],
            "batch": {"max_age_s": 0.2, "max_points": 5000},
            "spool": {"fsync_interval_s": 1.0, "live_window_s": 2.0},
            "telemetry": {"listen": f"127.0.0.1:{telemetry}"},
        }
        cfg.write_text(yaml.safe_dump(config))
        agent = start_agent(cfg, self.tmp / "logs", name="agent-0")
        starts = 0
        try:
            for _ in range(cycles):
                self._pause(0.5, 1.0)
                self.hub.kill()
                self.log.append("hub SIGKILL")
                self._pause(0.3, 1.0)
                self.hub = self.restart_hub()
                self._pause(0.3, 1.0)
                proxy.cut()
                self.log.append("link cut")
                self._pause(0.8, 1.5)
                agent.kill(signal.SIGKILL)
                self.log.append("agent SIGKILL")
                tear_newest_segment(self.tmp / "agent-data" / "spool")  # as if the kill hit mid-write
                starts += 1
                agent = start_agent(cfg, self.tmp / "logs", name=f"agent-{starts}")
                self._pause(0.5, 1.0)
                proxy.restore()
                self.log.append("link restored")
            try:
                wait_for(
                    lambda: stored_count(self.hub, self.seq) >= self.seq.points,
                    timeout=timeout_s,
                    interval=0.5,
                    what=f"{self.seq.points} points stored ({'; '.join(self.log)})",
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}; hub says: {hub_account(self.hub)}") from None
            wait_for(lambda: agent_pending(telemetry) == 0, timeout=20, what="agent spool drained")
        finally:
            agent.stop()
            proxy.close()
        assert agent.proc.returncode == 0, agent.log()[-2000:]
        self.agent_log = "\n".join(
            (self.tmp / "logs" / f"agent-{i}.log").read_text() for i in range(starts + 1)
        )
        self.spool_dir = self.tmp / "agent-data" / "spool"

    def assert_exactly_once(self) -> None:
        seq = self.seq
        counts = stored(self.hub, seq, "count")
        values = stored(self.hub, seq, "avg")
        ticks = [seq.start_ms + j * seq.step_ms for j in range(seq.ticks)]
        assert sorted(counts) == sorted(str(k) for k in range(seq.series))
        for k in counts:
            dupes = [t for t, c in counts[k] if c != 1.0]
            assert dupes == [], f"series {k}: {len(dupes)} ticks stored more than once"
            assert [t for t, _ in counts[k]] == ticks, f"series {k}: missing ticks"
            assert [v for _, v in values[k]] == [float(j) for j in range(seq.ticks)]
        spool = Spool(self.spool_dir)
        spool.open()
        try:
            assert spool.pending() == 0
        finally:
            spool.close()

    def _pause(self, lo: float, hi: float) -> None:
        time.sleep(self.rng.uniform(lo, hi))


def tear_newest_segment(spool_dir: Path) -> None:
    """Leaves what a SIGKILL in the middle of a record write leaves: a record header whose body is cut short.

    (A real kill lands between writes almost always: a record is one write of microseconds.) The bytes
    follow agent/outbox/spool.py's record layout: magic `OP`, a payload length, then the rest of the header.
    """
    newest = max(spool_dir.glob("*.seg"), key=lambda p: int(p.stem))
    with newest.open("ab") as f:
        f.write(b"OP" + struct.pack("<I", 4096) + bytes(34))
