"""A real InfluxDB 1.6 server (Debian's `influxd`) on free ports: the store tests' backend and the
reference the pushed-data bench measures the hub against."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import Service, free_port, start_service

_CONFIG = """
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[continuous_queries]
  enabled = false
"""


def start_influxd(root: Path) -> Service:
    """Starts `influxd run` with its data under `root`; ready once it logs that HTTP listens."""
    http_port, rpc_port = free_port(), free_port()
    conf = root / "influxdb.conf"
    conf.write_text(_CONFIG.format(root=root, http_port=http_port, rpc_port=rpc_port))
    return start_service(
        "influxd",
        ["influxd", "run", "-config", str(conf)],
        root,
        port=http_port,
        ready_log="Listening on HTTP",
    )
