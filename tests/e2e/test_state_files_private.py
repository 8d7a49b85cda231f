"""Every file a real hub and a real agent leave in their data dirs is 0600 and every directory 0700, and
the admin token is shown exactly once in their combined output."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.outpost import start_agent, start_hub, wait_for, write_agent_config

pytestmark = pytest.mark.e2e


def _modes(root: Path) -> dict[str, str]:
    """Relative path -> octal mode of `root` and everything under it (symlinks are not expected)."""
    out = {".": f"{stat.S_IMODE(root.stat().st_mode):04o}"}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = f"{stat.S_IMODE(p.lstat().st_mode):04o}"
    return out


def _not_private(root: Path) -> dict[str, str]:
    return {
        rel: mode
        for rel, mode in _modes(root).items()
        if mode != ("0700" if (root / rel).is_dir() else "0600")
    }


def test_hub_and_agent_state_files_are_0600_dirs_0700_and_the_token_is_printed_once(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)  # its data dir exists already, created 0755 by the test: the hub tightens it
    agent = None
    try:
        tls = hub.issue_agent("private", tmp_path / "certs")
        config = write_agent_config(tmp_path / "agent.yaml", hub, tls)
        agent_data = tmp_path / "agent-data"
        agent = start_agent(config, tmp_path / "logs")
        wait_for(
            lambda: [a for a in hub.get("/api/v1/agents")["agents"] if a["batches_received"] >= 2],
            timeout=30,
            what="two batches delivered",
        )
        running = _modes(hub.data_dir)
        assert "state.sqlite-wal" in running and "state.sqlite-shm" in running  # SQLite's own files too
        assert _not_private(hub.data_dir) == {}
        assert _not_private(agent_data) == {}
        agent.stop()  # flushes the spool's acks and saves the detector snapshots
        hub.stop()  # flushes the embedded store into chunks
        assert agent.proc.returncode == 0 and hub.service.proc.returncode == 0
        for root in (hub.data_dir, agent_data):
            assert _not_private(root) == {}, root
        assert any(p.startswith("detect") for p in _modes(agent_data)), _modes(agent_data)
        assert {"admin.token", "state.sqlite", "pki", "store"} <= set(_modes(hub.data_dir))
        token = (hub.data_dir / "admin.token").read_text().strip()
        assert (hub.service.log() + agent.log()).count(token) == 1
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()
