"""`agent` and `hub` never import each other, and protocol libraries stay in their seam modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "pb" in path.relative_to(ROOT).parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"), [("agent", "hub"), ("hub", "agent"), ("shared", "agent"), ("shared", "hub")]
)
def test_package_does_not_import_the_other_side(package: str, forbidden: str) -> None:
    offenders = {
        f: sorted(n for n in names if n == forbidden or n.startswith(forbidden + "."))
        for f, names in _imports(package).items()
    }
    assert {f: n for f, n in offenders.items() if n} == {}


# Third-party protocol libraries and the one module allowed to import each.
SEAMS = {
    "grpc": {"agent/transport/grpc.py", "hub/ingest/grpc_server.py"},
    "shared.pb.outpost.v1": {"shared/codec.py"},
    # Prometheus remote write: its protobuf and its snappy codec, in the receiver's parser.
    "shared.pb.prometheus.v1": {"hub/ingest/webhooks/remote_write.py"},
    "cramjam": {"hub/ingest/webhooks/remote_write.py"},
    "line_protocol_parser": {"hub/ingest/webhooks/lineprotocol/__init__.py"},
    "pysnmp": {"agent/collect/snmp/session.py"},
    "redfish": {"agent/collect/redfish/session.py"},
    # aiohttp: the Redfish client, the agent's /metrics + /healthz server, and the hub's outbound HTTP
    # (notifications, log pollers, the LLM client all go through hub/http_client.py).
    "aiohttp": {
        "agent/collect/redfish/session.py",
        "agent/telemetry.py",
        "hub/http_client.py",
    },
    "nats": {"agent/transport/nats.py", "hub/ingest/nats_consumer.py", "hub/bus/nats.py"},
    "influxdb_client": {"hub/store/influx/store.py"},
    "river": {"shared/detect/river_hst.py"},
    "psutil": {"agent/collect/host.py"},
    # uvicorn serves the REST API and the enrollment listener through one module.
    "uvicorn": {"hub/serve.py"},
}


@pytest.mark.parametrize("lib", sorted(SEAMS))
def test_protocol_library_is_imported_only_in_its_seam(lib: str) -> None:
    users = {
        f
        for pkg in ("agent", "hub", "shared")
        for f, names in _imports(pkg).items()
        if any(n == lib or n.startswith(lib + ".") for n in names)
    }
    assert users <= SEAMS[lib]
