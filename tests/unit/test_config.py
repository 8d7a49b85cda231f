"""A bad config exits 2 and names the path of the bad field; secrets in it are never echoed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from agent.config import AgentConfig
from hub.config import HubConfig
from hub.fleet.agents import SEEN_HORIZON_MS
from hub.store.config import EmbeddedStoreConfig, InfluxStoreConfig
from shared.config_errors import format_validation_error
from shared.delivery import DEDUP_WINDOW_S

pytestmark = pytest.mark.unit

BIN = Path(sys.executable).parent


def _check(tool: str, tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return subprocess.run(
        [str(BIN / tool), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )


def test_agent_config_error_names_the_field_path_and_exits_2(tmp_path: Path) -> None:
    r = _check(
        "outpost-agent",
        tmp_path,
        "hub: {tls: {ca_file: a, cert_file: b}}\ndevices:\n  - kind: host\n    interval_s: -1\n",
    )
    assert r.returncode == 2
    assert "hub -> tls -> key_file: Field required" in r.stderr
    assert "devices -> 0 -> host -> interval_s: Input should be greater than 0" in r.stderr


def test_agent_config_rejects_unknown_fields_and_device_kinds(tmp_path: Path) -> None:
    r = _check(
        "outpost-agent",
        tmp_path,
        "hub: {tls: {ca_file: a, cert_file: b, key_file: c}, passw0rd: hunter2}\n"
        "devices: [{kind: toaster}]\n",
    )
    assert r.returncode == 2
    assert "hub -> passw0rd: Extra inputs are not permitted" in r.stderr
    assert "devices -> 0: Input tag 'toaster'" in r.stderr
    assert "hunter2" not in r.stderr


def test_yaml_syntax_error_is_reported_with_a_line(tmp_path: Path) -> None:
    r = _check("outpost-agent", tmp_path, "hub: [unclosed\n")
    assert r.returncode == 2
    assert "not valid YAML at line" in r.stderr


def test_valid_agent_config_passes_check(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):  # check-config also checks the files it names (the key must be private)
        (tmp_path / name).write_text(name)
    (tmp_path / "c").chmod(0o600)
    tls = f"{{ca_file: {tmp_path / 'a'}, cert_file: {tmp_path / 'b'}, key_file: {tmp_path / 'c'}}}"
    r = _check("outpost-agent", tmp_path, f"hub: {{tls: {tls}}}\n")
    assert r.returncode == 0, r.stderr
    assert "ok (1 devices)" in r.stdout


def test_hub_config_error_names_the_field_path(tmp_path: Path) -> None:
    r = _check("outpost-hub", tmp_path, "grpc: {listen: nowhere, max_inflight: 0}\n")
    assert r.returncode == 2
    assert "grpc -> listen: String should match pattern" in r.stderr
    assert "grpc -> max_inflight: Input should be greater than or equal to 1" in r.stderr


def test_two_devices_with_one_name_are_refused(tmp_path: Path) -> None:
    r = _check(
        "outpost-agent",
        tmp_path,
        "hub: {tls: {ca_file: a, cert_file: b, key_file: c}}\n"
        "devices: [{kind: host, name: jump}, {kind: host, name: jump}]\n",
    )
    assert r.returncode == 2
    assert "devices: Value error, device name 'jump' is used twice" in r.stderr


def _errors(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return format_validation_error(exc.value)


_TLS = {"ca_file": "a", "cert_file": "b", "key_file": "c"}


def test_a_spool_kept_longer_than_the_hub_dedup_window_is_refused_with_the_reason() -> None:
    text = _errors(AgentConfig, {"hub": {"tls": _TLS}, "spool": {"max_age_s": DEDUP_WINDOW_S + 1}})
    assert text == (
        "spool -> max_age_s: Value error, must be at most 259200 s (72 h): the hub forgets batch ids "
        "after that, so a batch replayed later would be stored and counted twice"
    )


def test_a_spool_age_of_exactly_the_dedup_window_is_the_default_and_accepted() -> None:
    config = AgentConfig.model_validate({"hub": {"tls": _TLS}, "spool": {"max_age_s": DEDUP_WINDOW_S}})
    assert (
        config.spool.max_age_s
        == DEDUP_WINDOW_S
        == AgentConfig.model_validate({"hub": {"tls": _TLS}}).spool.max_age_s
    )


@pytest.mark.parametrize("kind", ["embedded", "influx"])
def test_a_hub_dedup_window_shorter_than_the_contract_is_refused_with_the_reason(kind: str) -> None:
    store: dict[str, Any] = {"kind": kind, "dedup_window": DEDUP_WINDOW_S - 1}
    if kind == "influx":
        store["url"] = "http://127.0.0.1:8086"
    text = _errors(HubConfig, {"store": store})
    assert text == (
        f"store -> {kind} -> dedup_window: Value error, must be at least 259200 s (72 h): agents replay "
        "their spool that long, and a batch id forgotten earlier would be stored and counted twice"
    )


def test_the_hub_remembers_batch_ids_exactly_as_long_as_the_agent_may_replay_them() -> None:
    assert EmbeddedStoreConfig().dedup_window.total_seconds() == DEDUP_WINDOW_S
    assert InfluxStoreConfig(url="http://x").dedup_window.total_seconds() == DEDUP_WINDOW_S
    assert SEEN_HORIZON_MS == DEDUP_WINDOW_S * 1000
    hub = HubConfig.model_validate({"store": {"kind": "embedded", "dedup_window": DEDUP_WINDOW_S}})
    assert hub.store.dedup_window == dt.timedelta(hours=72)


def test_agent_check_config_exits_2_on_a_spool_age_beyond_the_dedup_window(tmp_path: Path) -> None:
    r = _check(
        "outpost-agent",
        tmp_path,
        "hub: {tls: {ca_file: a, cert_file: b, key_file: c}}\nspool: {max_age_s: 300000}\n",
    )
    assert r.returncode == 2
    assert "spool -> max_age_s: Value error, must be at most 259200 s (72 h)" in r.stderr
