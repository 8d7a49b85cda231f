"""Syslog to search: util-linux `logger` sends to a real agent's syslog receiver, the agent delivers LOGS
batches to a real hub, and the lines come back from `/api/v1/logs` by text and template, with their
template counts readable as `log_template_count` series."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.collect.test_syslog_receiver import logger
from tests.support.outpost import start_agent, start_hub, wait_for, write_agent_config
from tests.support.procs import free_port

# Two real processes and a sender: ~20 s on a loaded machine, so in `make soak`; the hub side of the same
# path (lines pushed over gRPC, searched over HTTP) runs in `make test` (tests/api/test_logs_api.py).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHAPES = (
    "Interface GigabitEthernet0/{i} changed state to down",
    "Accepted publickey for user{i} from 10.0.0.{i} port 5{i}22 ssh2",
    "temperature sensor {i} reads {i}5 C above threshold",
)


async def test_lines_sent_with_logger_are_searchable_at_the_hub_by_text_and_template(tmp_path: Path) -> None:
    hub = start_hub(tmp_path, extra={"logs": {"counts_interval_s": 0.2}})
    agent = None
    try:
        port = free_port()
        syslog = {
            "enabled": True,
            "udp_listen": None,
            "tcp_listen": f"127.0.0.1:{port}",
            "batch_max_age_s": 0.3,
        }
        cfg = write_agent_config(
            tmp_path / "agent.yaml", hub, hub.issue_agent("edge", tmp_path), devices=[], syslog=syslog
        )
        agent = start_agent(cfg, tmp_path / "logs")
        lines = tmp_path / "lines.txt"
        lines.write_text("".join(SHAPES[i % 3].format(i=i % 10) + "\n" for i in range(90)))
        started = int(time.time() * 1000) - 60_000
        await logger("--rfc5424", "--octet-count", "-n", "127.0.0.1", "-P", str(port), "--tcp", "-t", "netd",
                     "-p", "local0.warning", "-f", str(lines))  # fmt: skip
        headers = {"Authorization": f"Bearer {hub.token}"}

        def logs(**params: object) -> list[dict[str, object]]:
            r = httpx.get(f"{hub.api_url}/api/v1/logs", params={"from": started, "limit": 1000, **params},
                          headers=headers)  # fmt: skip
            assert r.status_code == 200, r.text
            found: list[dict[str, object]] = r.json()["logs"]
            return found

        every = wait_for(lambda: (got := logs()) and len(got) == 90 and got, what="90 lines searchable")
        assert {(line["agent"], line["app"], line["severity"], line["facility"]) for line in every} == {
            ("default/edge", "netd", 4, 16)
        }
        down = logs(q="changed AND down")
        assert len(down) == 30 and len({line["template_id"] for line in down}) == 1
        assert len(logs(template=down[0]["template_id"])) == 30
        templates = httpx.get(f"{hub.api_url}/api/v1/logs/templates", headers=headers).json()["templates"]
        assert sorted(t["count"] for t in templates) == [30, 30, 30]

        def counted() -> int:
            params = {"metric": "log_template_count", "start": started, "end": "now"}
            r = httpx.get(f"{hub.api_url}/api/v1/query", headers=headers, params=params)
            return sum(int(v) for s in r.json()["series"] for _, v in s["points"])

        wait_for(lambda: counted() == 90, what="template counts as series")
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()
