"""`check-config` checks the files a config names, and `run` refuses what `check-config` refuses (exit 2).

Every case runs the real CLI as a subprocess on a config in a tmp dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
SECRET = "s3cr3t-community-value"


def _cli(tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _secret(path: Path, text: str = SECRET, mode: int = 0o600) -> str:
    path.write_text(text + "\n")
    path.chmod(mode)
    return str(path)


def _good(tmp: Path) -> dict[str, Any]:
    """A config naming real files with private modes for its secrets: four devices, every file kind."""
    tls = tmp / "tls"
    tls.mkdir()
    (tls / "ca.pem").write_text("ca")
    (tls / "agent.pem").write_text("cert")
    profiles = tmp / "profiles"
    profiles.mkdir()
    return {
        "data_dir": str(tmp / "data"),
        "hub": {
            "address": "127.0.0.1:1",
            "tls": {
                "ca_file": str(tls / "ca.pem"),
                "cert_file": str(tls / "agent.pem"),
                "key_file": _secret(tls / "agent.key", "key"),
            },
        },
        "telemetry": {"listen": None},
        "devices": [
            {"kind": "host", "interval_s": 60},
            {
                "kind": "snmp",
                "name": "sw1",
                "address": "127.0.0.1",
                "community_file": _secret(tmp / "sw1.community", mode=0o640),
                "profiles_dir": str(profiles),
            },
            {
                "kind": "snmp",
                "name": "ups",
                "address": "127.0.0.1",
                "version": "3",
                "usm": {
                    "username": "u",
                    "auth_protocol": "sha",
                    "auth_key_file": _secret(tmp / "ups.auth"),
                    "priv_protocol": "aes128",
                    "priv_key_file": _secret(tmp / "ups.priv"),
                },
            },
            {
                "kind": "redfish",
                "name": "bmc",
                "url": "https://127.0.0.1",
                "username": "monitor",
                "password_file": _secret(tmp / "bmc.password"),
                "ca_file": str(tls / "ca.pem"),
            },
        ],
    }


def _write(tmp: Path, config: dict[str, Any]) -> Path:
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_config_whose_files_exist_and_whose_secrets_are_private_passes(tmp_path: Path) -> None:
    path = _write(tmp_path, _good(tmp_path))
    r = _cli("outpost-agent", "check-config", path)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{path}: ok (4 devices)\n", "")


def test_a_missing_ca_file_exits_2_with_its_field_path(tmp_path: Path) -> None:
    config = _good(tmp_path)
    missing = tmp_path / "nowhere" / "ca.pem"
    config["hub"]["tls"]["ca_file"] = str(missing)
    r = _cli("outpost-agent", "check-config", _write(tmp_path, config))
    assert r.returncode == 2
    assert r.stderr.splitlines()[1:] == [f"hub -> tls -> ca_file: file not found: {missing}"]


def test_every_missing_secret_file_is_named_with_its_path_from_device_index_0(tmp_path: Path) -> None:
    config = _good(tmp_path)
    for f in ("sw1.community", "ups.auth", "bmc.password"):
        (tmp_path / f).unlink()
    (tmp_path / "tls" / "agent.key").unlink()
    r = _cli("outpost-agent", "check-config", _write(tmp_path, config))
    assert r.returncode == 2
    assert r.stderr.splitlines()[1:] == [
        f"hub -> tls -> key_file: file not found: {tmp_path / 'tls' / 'agent.key'}",
        f"devices -> 1 -> snmp -> community_file: file not found: {tmp_path / 'sw1.community'}",
        f"devices -> 2 -> snmp -> usm -> auth_key_file: file not found: {tmp_path / 'ups.auth'}",
        f"devices -> 3 -> redfish -> password_file: file not found: {tmp_path / 'bmc.password'}",
    ]


def test_world_readable_secrets_are_refused_with_the_rule_and_never_echoed(tmp_path: Path) -> None:
    config = _good(tmp_path)
    (tmp_path / "sw1.community").chmod(0o644)
    (tmp_path / "ups.priv").chmod(0o604)
    r = _cli("outpost-agent", "check-config", _write(tmp_path, config))
    assert r.returncode == 2
    rule = "secret files must not be world-readable (chmod o-rwx, e.g. 0600 or 0640)"
    assert r.stderr.splitlines()[1:] == [
        "devices -> 1 -> snmp -> community_file: secret file is readable by every user (mode 0644): "
        f"{tmp_path / 'sw1.community'}; {rule}",
        "devices -> 2 -> snmp -> usm -> priv_key_file: secret file is readable by every user (mode 0604): "
        f"{tmp_path / 'ups.priv'}; {rule}",
    ]
    assert SECRET not in r.stderr + r.stdout


def test_a_directory_where_a_file_belongs_and_a_missing_profiles_dir_are_refused(tmp_path: Path) -> None:
    config = _good(tmp_path)
    config["hub"]["tls"]["cert_file"] = str(tmp_path / "tls")
    config["devices"][1]["profiles_dir"] = str(tmp_path / "no-profiles")
    r = _cli("outpost-agent", "check-config", _write(tmp_path, config))
    assert r.returncode == 2
    assert r.stderr.splitlines()[1:] == [
        f"hub -> tls -> cert_file: not a regular file: {tmp_path / 'tls'}",
        f"devices -> 1 -> snmp -> profiles_dir: directory not found: {tmp_path / 'no-profiles'}",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: an unreadable file needs a normal user")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    config = _good(tmp_path)
    (tmp_path / "tls" / "ca.pem").chmod(0o000)
    r = _cli("outpost-agent", "check-config", _write(tmp_path, config))
    assert r.returncode == 2
    assert f"hub -> tls -> ca_file: cannot read: permission denied: {tmp_path / 'tls' / 'ca.pem'}" in r.stderr


def test_run_refuses_what_check_config_refuses_with_exit_2_before_starting(tmp_path: Path) -> None:
    config = _good(tmp_path)
    (tmp_path / "tls" / "ca.pem").unlink()
    path = _write(tmp_path, config)
    started = time.monotonic()
    r = _cli("outpost-agent", "run", "--config", path)
    assert r.returncode == 2
    assert f"hub -> tls -> ca_file: file not found: {tmp_path / 'tls' / 'ca.pem'}" in r.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "data").exists()  # nothing was started or created


def test_hub_check_config_passes_a_good_config_and_run_exits_2_on_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "hub.yaml"
    good.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "hub"), "store": {"kind": "embedded"}}))
    r = _cli("outpost-hub", "check-config", good)
    assert (r.returncode, r.stdout) == (0, f"{good}: ok\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "hub"), "store": {"kind": "embedded", "dedup_window": 60}})
    )
    r = _cli("outpost-hub", "run", "--config", bad)
    assert r.returncode == 2
    assert "store -> embedded -> dedup_window: Value error, must be at least 259200 s (72 h)" in r.stderr
    assert not (tmp_path / "hub").exists()
