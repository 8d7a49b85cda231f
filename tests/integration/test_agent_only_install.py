"""An agent-only install (`pip install outpost[agent]`) imports every agent module without hub packages."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AGENT_PY = ROOT / ".venv-agent" / "bin" / "python"

_PROBE = """
import importlib, importlib.util, pkgutil, agent
for forbidden in ("fastapi", "uvicorn", "sqlalchemy", "influxdb_client", "sklearn", "river"):
    assert importlib.util.find_spec(forbidden) is None, forbidden + " is installed in the agent-only venv"
mods = [m.name for m in pkgutil.walk_packages(agent.__path__, "agent.")]
for name in mods:
    importlib.import_module(name)
from shared.detect import DetectConfig
try:
    DetectConfig.model_validate({"default": {"detector": "hst"}})
    raise SystemExit("hst accepted without River installed")
except ValueError as exc:
    assert "pip install 'outpost[agent,ml]'" in str(exc), exc
print(len(mods))
"""


@pytest.mark.skipif(not AGENT_PY.exists() and not os.environ.get("CI"), reason="run `make agent-venv` first")
def test_every_agent_module_imports_without_hub_dependencies(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(AGENT_PY), "-c", _PROBE], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.strip()) >= 10
