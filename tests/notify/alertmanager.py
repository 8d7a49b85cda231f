"""A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) as a subprocess fixture.

On a free port, clustering off (`--cluster.listen-address=`), its own storage in tmp, and a config whose
one route sends every group to a webhook (the test's recorder) quickly: a NOC's routing, in miniature.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.procs import Service, free_port, start_service

BINARY = "/usr/bin/prometheus-alertmanager"

_CONFIG = """
route:
  receiver: noc
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: noc
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"""


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or (BINARY if Path(BINARY).exists() else None)


def start_alertmanager(root: Path, webhook_url: str) -> Service:
    binary = alertmanager_binary()
    if binary is None:
        raise FileNotFoundError("prometheus-alertmanager not found: install Debian's package (make apt)")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "alertmanager.yml"
    config.write_text(_CONFIG.format(webhook_url=webhook_url))
    port = free_port()
    cmd = [
        binary,
        f"--config.file={config}",
        f"--storage.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=info",
    ]
    return start_service("alertmanager", cmd, root, port=port, ready_log="Listening on", timeout=30)
