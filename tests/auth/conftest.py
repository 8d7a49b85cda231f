"""One live hub for the auth tests, with a user of each role (`viewer` added by `outpost-hub user add`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.outpost import BIN, HubHandle, start_hub

PASSWORD = "correct horse battery"
# Generous enough that the walk over every route is never limited; the rate-limit test starts its own hub.
OPEN_LIMITS = {
    "login_per_ip": {"rate": 1000, "burst": 1000},
    "login_per_user": {"rate": 1000, "burst": 1000},
    "api_per_ip": {"rate": 100_000, "burst": 100_000},
    "read_per_principal": {"rate": 100_000, "burst": 100_000},
    "write_per_principal": {"rate": 100_000, "burst": 100_000},
}


def hub_command(config_path: Path, *args: str) -> list[str]:
    """An `outpost-hub` command on the hub whose config (or just its data dir) is `config_path`."""
    return [str(BIN / "outpost-hub"), *args, "--config", str(config_path)]


def login(hub: HubHandle, username: str, password: str = PASSWORD) -> dict[str, Any]:
    r = httpx.post(f"{hub.api_url}/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@dataclass
class AuthHub:
    hub: HubHandle
    admin_key: str

    @property
    def url(self) -> str:
        return self.hub.api_url

    def admin(self) -> dict[str, str]:
        return {"X-API-Key": self.admin_key}

    def add_user(self, username: str, role: str, password: str = PASSWORD) -> dict[str, Any]:
        """Adds a user over the API, as the admin key."""
        r = httpx.post(
            f"{self.url}/api/v1/users",
            headers=self.admin(),
            json={"username": username, "password": password, "role": role},
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def add_key(self, name: str, role: str, **extra: Any) -> dict[str, Any]:
        """Creates an API key as the admin; the answer carries its secret."""
        r = httpx.post(
            f"{self.url}/api/v1/keys", headers=self.admin(), json={"name": name, "role": role, **extra}
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


def start_auth_hub(tmp: Path, limits: dict[str, Any] | None = None) -> AuthHub:
    """A hub under `tmp/hub` with the given rate limits; its admin key is read from its data dir."""
    hub = start_hub(tmp, extra={"auth": {"rate_limits": limits or OPEN_LIMITS}})
    return AuthHub(hub, hub.token)


@pytest.fixture(scope="session")
def auth_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthHub]:
    """Shared by every auth test that needs a live hub; each test makes its own users and keys."""
    tmp = tmp_path_factory.mktemp("auth")
    cli_config = tmp / "cli.yaml"  # the CLI needs only the data dir, so it runs while the hub starts
    cli_config.write_text(yaml.safe_dump({"data_dir": str(tmp / "hub")}))
    cli = subprocess.Popen(
        hub_command(cli_config, "user", "add", "viewer", "--role", "viewer", "--password-stdin"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        live = start_auth_hub(tmp)
    except BaseException:
        cli.kill()
        cli.wait()
        raise
    try:
        out, err = cli.communicate(PASSWORD + "\n", timeout=120)
        assert cli.returncode == 0 and "user viewer added (role viewer" in out, err
        live.add_user("operator", "operator")
        live.add_user("admin", "admin")
        yield live
    finally:
        live.hub.stop()
