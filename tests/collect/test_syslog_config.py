"""The `syslog:` section: off by default, every field bounded, a bad value refused with its path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import load_config
from shared.config_errors import ConfigError

pytestmark = pytest.mark.unit

_HUB = {"tls": {"ca_file": "/c.pem", "cert_file": "/a.pem", "key_file": "/a.key"}}


def _load(tmp_path: Path, syslog: object) -> object:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"hub": _HUB, "syslog": syslog}))
    return load_config(path).syslog


def test_syslog_is_off_unless_enabled(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"hub": _HUB}))
    assert load_config(path).syslog.enabled is False


@pytest.mark.parametrize(
    ("syslog", "error"),
    [
        ({"max_message_bytes": 100}, "syslog -> max_message_bytes"),
        ({"max_connections": 0}, "syslog -> max_connections"),
        ({"rate_per_source": 0}, "syslog -> rate_per_source"),
        ({"queue_size": 10**7}, "syslog -> queue_size"),
        ({"udp_listen": "514"}, "syslog -> udp_listen"),
        ({"bogus": 1}, "syslog -> bogus"),
        ({"tls": {"listen": "0.0.0.0:6514"}}, "syslog -> tls -> cert_file"),
        ({"enabled": True, "udp_listen": None, "tcp_listen": None}, "enabled with no listener"),
        ({"max_message_bytes": 1024 * 1024, "batch_max_bytes": 65536}, "must not exceed batch_max_bytes"),
    ],
)
def test_a_bad_syslog_value_is_refused_with_its_path(tmp_path: Path, syslog: object, error: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, syslog)
    assert error in str(err.value)
