"""Collects this machine's own health with psutil: CPU per core, memory, disk usage and I/O, network, load.

Counters (disk and network bytes) become per-second rates here; the first poll yields no rate.
Process and connection scans are deliberately absent: they are too costly for a per-interval tick.
"""

from __future__ import annotations

import os
from typing import Literal

import psutil
from pydantic import BaseModel, ConfigDict, Field

from agent.collect.base import ConfiguredTarget
from agent.collect.rates import RateTracker
from shared.clock import Clock, SystemClock
from shared.model import CollectResult, MetricKind, Sample, SeriesKey

# Pseudo and container filesystems that say nothing about the host's disks.
_SKIP_FSTYPES = frozenset(
    {"tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "cgroup", "cgroup2", ""}
)


class HostConfig(BaseModel):
    """Polls the machine the agent runs on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["host"] = "host"
    name: str = Field(default="host", min_length=1)
    interval_s: float = Field(default=10.0, gt=0)


class HostCollector(ConfiguredTarget[HostConfig]):
    """psutil-based collector for the agent's own host."""

    def __init__(self, config: HostConfig, clock: Clock | None = None) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._rates = RateTracker()

    async def start(self) -> None:
        psutil.cpu_percent(percpu=True)  # primes the per-core counters so the first poll has a value

    async def collect(self) -> CollectResult:
        now = self._clock.now_ms()
        samples: list[Sample] = []
        errors: list[str] = []

        def gauge(metric: str, value: float, unit: str = "", **labels: str) -> None:
            samples.append(Sample(SeriesKey.of(metric, labels), now, float(value), MetricKind.GAUGE, unit))

        def rate(metric: str, counter: float, unit: str, **labels: str) -> None:
            key = SeriesKey.of(metric, labels)
            r = self._rates.update(key, now, counter, bits=64)
            if r is not None:
                samples.append(Sample(key, now, r, MetricKind.RATE, unit))

        for core, pct in enumerate(psutil.cpu_percent(percpu=True)):
            gauge("host_cpu_utilization_percent", pct, "percent", core=str(core))
        vm = psutil.virtual_memory()
        gauge("host_memory_used_bytes", vm.total - vm.available, "bytes")
        gauge("host_memory_total_bytes", vm.total, "bytes")
        gauge("host_memory_utilization_percent", vm.percent, "percent")
        for name, value in zip(("1m", "5m", "15m"), os.getloadavg(), strict=True):
            gauge("host_load_average", value, "", window=name)
        for part in psutil.disk_partitions(all=False):
            if part.fstype in _SKIP_FSTYPES:
                continue
            try:
                du = psutil.disk_usage(part.mountpoint)
            except OSError as exc:
                errors.append(f"disk_usage {part.mountpoint}: {exc.strerror}")
                continue
            gauge("host_disk_used_bytes", du.used, "bytes", mountpoint=part.mountpoint)
            gauge("host_disk_utilization_percent", du.percent, "percent", mountpoint=part.mountpoint)
        for dev, io in (psutil.disk_io_counters(perdisk=True) or {}).items():
            # `disk`, not `device`: the scheduler's `device` label names the host itself (collect/device.py)
            rate("host_disk_read_bytes_per_second", io.read_bytes, "bytes/s", disk=dev)
            rate("host_disk_write_bytes_per_second", io.write_bytes, "bytes/s", disk=dev)
        for nic, net in (psutil.net_io_counters(pernic=True) or {}).items():
            rate("host_network_receive_bytes_per_second", net.bytes_recv, "bytes/s", interface=nic)
            rate("host_network_transmit_bytes_per_second", net.bytes_sent, "bytes/s", interface=nic)
        return CollectResult(self.target, samples, [], errors)

    async def aclose(self) -> None:
        return None
