"""Store fixtures: every backend behind one factory, real servers started as subprocesses."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from hub.store.base import Store
from hub.store.config import EmbeddedStoreConfig, InfluxStoreConfig
from hub.store.factory import build_store
from hub.store.influx.store import InfluxStore
from shared.clock import FakeClock
from tests.store.vm_reader import VictoriaMetricsReader
from tests.support.influxd import start_influxd
from tests.support.procs import Service, free_port, start_service

# Points are stamped in 2026 so VictoriaMetrics (run with a long retention) accepts them.
T0 = 1_789_999_200_000
BACKENDS = ["embedded", "embedded-flushed", "influx-victoriametrics", "influx-1.6"]

_database_ids = itertools.count(1)


def start_victoria_metrics(root: Path, port: int | None = None) -> Service:
    """A VictoriaMetrics single node taking InfluxDB line protocol on `/api/v2/write`."""
    port = port or free_port()
    cmd = [
        shutil.which("victoria-metrics") or "victoria-metrics",
        f"-storageDataPath={root / 'vm-data'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-search.latencyOffset=0s",
        # Store `measurement value=` as metric `measurement`, not `measurement_value`.
        "-influxSkipSingleField",
        "-retentionPeriod=100y",
    ]
    return start_service("victoria-metrics", cmd, root, port=port, ready_log="started VictoriaMetrics")


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One InfluxDB 1.6 server for the session; each test gets its own database."""
    svc = start_influxd(tmp_path_factory.mktemp("influxd"))
    try:
        yield svc
    finally:
        svc.stop()


@dataclass
class Backend:
    """Opens stores of one backend kind on the same data, and closes them all at teardown."""

    name: str
    make: Callable[[], Store]
    clock: FakeClock
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = self.make()
        store.open()
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each store backend in turn (`embedded-flushed` moves every batch from head to chunks at once)."""
    clock = FakeClock(T0 + 86_400_000)
    services: list[Service] = []
    name = request.param
    if name.startswith("embedded"):
        cfg = EmbeddedStoreConfig(head_max_points=1 if name == "embedded-flushed" else 1_000_000)
        backend = Backend(name, lambda: build_store(cfg, tmp_path, clock), clock)
    elif name == "influx-victoriametrics":
        vm = start_victoria_metrics(tmp_path)
        services.append(vm)
        url = f"http://127.0.0.1:{vm.port}"
        icfg = InfluxStoreConfig(url=url, org="noc", bucket="outpost", write_mode="v2")
        backend = Backend(
            name,
            lambda: InfluxStore(icfg, tmp_path / "ledger.sqlite", clock, VictoriaMetricsReader(url)),
            clock,
        )
    else:
        server: Service = request.getfixturevalue("influxd")
        url = f"http://127.0.0.1:{server.port}"
        database = f"outpost_{next(_database_ids)}"
        httpx.post(f"{url}/query", data={"q": f'CREATE DATABASE "{database}"'}).raise_for_status()
        icfg = InfluxStoreConfig(url=url, database=database, write_mode="v1")
        backend = Backend(name, lambda: build_store(icfg, tmp_path, clock), clock)
    try:
        yield backend
    finally:
        backend.close_all()
        for svc in services:
            svc.stop()
