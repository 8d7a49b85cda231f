"""A bad config exits 2 and names the path of the bad field; secrets in it are never echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    r = _check("outpost-agent", tmp_path, "hub: {tls: {ca_file: a, cert_file: b, key_file: c}}\n")
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
