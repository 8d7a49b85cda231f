"""The annotated example configs in packaging/examples/ are valid: documentation that cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config as load_agent_config
from hub.config import load_config as load_hub_config

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "packaging" / "examples"


def test_example_agent_config_validates_and_lists_every_device_kind() -> None:
    config = load_agent_config(EXAMPLES / "agent.yaml")
    assert sorted({d.kind for d in config.devices}) == ["host", "redfish", "snmp"]
    assert len({d.name for d in config.devices}) == len(config.devices)


def test_example_hub_config_validates() -> None:
    config = load_hub_config(EXAMPLES / "hub.yaml")
    assert config.store.kind == "embedded"
