"""Enrollment with scoped, expiring, use-limited, revocable tokens; renewal; revocation; the audit log."""

from __future__ import annotations

import datetime as dt
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from agent.enroll.enroll import EnrollError, enroll, new_key_and_csr
from agent.transport.base import DeliveryRejected
from agent.transport.grpc import GrpcTransport, renew_certificate
from hub.db.engine import create_engine
from hub.identity import pki
from hub.identity.db import EnrollState
from hub.identity.service import EnrollService
from shared.tls import identity_from_pem
from tests.support.outpost import BIN, HubHandle, start_agent, start_hub, wait_for, write_agent_config
from tests.support.procs import free_port
from tests.transport.items import metrics_item

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def enroll_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubHandle, str]]:
    """One hub for the module (tests use distinct agent names): start-ups dominate these tests' time."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("enroll-hub")
    hub = start_hub(tmp, extra={"enroll": {"listen": f"127.0.0.1:{port}", "revocation_refresh_s": 0.5}})
    try:
        yield hub, f"localhost:{port}"
    finally:
        hub.stop()


def _hub_cli(hub: HubHandle, *args: str) -> str:
    out = subprocess.run(
        [str(BIN / "outpost-hub"), *args, "--config", str(hub.config_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _enroll_db(hub: HubHandle) -> EnrollState:
    """The hub's enrollment tables, opened from the test process (what the CLI does, without its start-up)."""
    return EnrollState(create_engine(f"sqlite:///{hub.data_dir / 'state.sqlite'}"))


def _token(hub: HubHandle, site: str = "dc1", ttl_s: float = 3600, uses: int = 1) -> str:
    return EnrollService(hub.ca, _enroll_db(hub), 90).create_token(site, ttl_s, uses).token


def _agent(hub: HubHandle, agent: str) -> dict[str, Any]:
    return next((a for a in hub.get("/api/v1/agents")["agents"] if a["id"] == agent), {})


def _audit(hub: HubHandle) -> list[tuple[str, str, str]]:
    return [(e.action, e.agent, e.outcome) for e in _enroll_db(hub).audit_log()]


async def test_agent_enrolls_with_a_token_and_its_certificate_names_site_and_agent(
    enroll_hub: tuple[HubHandle, str], tmp_path: Path
) -> None:
    hub, address = enroll_hub
    made = _hub_cli(hub, "token", "create", "--site", "dc1", "--ttl", "1h", "--uses", "10")
    m = re.search(r"^token: (\S+)$", made, re.M)
    assert m, made
    token = m.group(1)
    out = subprocess.run(
        [
            str(BIN / "outpost-agent"),
            "enroll",
            "--hub",
            address,
            "--token",
            token,
            "--name",
            "rack7",
            "--dir",
            str(tmp_path / "tls"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    secret = token.rsplit(".", 1)[0].split(".", 1)[1]
    assert secret not in hub.service.log()
    cert, key = tmp_path / "tls" / "agent.pem", tmp_path / "tls" / "agent.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(cert.stat().st_mode) == 0o600
    assert identity_from_pem(cert.read_bytes()) == "dc1/rack7"
    t = GrpcTransport(
        hub.grpc_address,
        ca_pem=(tmp_path / "tls" / "ca.pem").read_bytes(),
        cert_pem=cert.read_bytes(),
        key_pem=key.read_bytes(),
        server_name="localhost",
        timeout_s=5,
    )
    await t.start()
    try:
        assert (await t.send(metrics_item(1, points=10).envelope)).accepted_points == 10
    finally:
        await t.aclose()
    assert "dc1/rack7" in [a["id"] for a in hub.get("/api/v1/agents")["agents"]]
    nats_conf = _hub_cli(hub, "nats-config", "--store-dir", "/tmp/js", "--cert", "n.pem", "--key", "n.key")
    assert '"user": "outpost://dc1/rack7"' in nats_conf and '"outpost.ingest.dc1.rack7"' in nats_conf


def test_used_up_expired_and_revoked_tokens_are_refused_and_every_attempt_is_audited(
    enroll_hub: tuple[HubHandle, str], tmp_path: Path
) -> None:
    hub, address = enroll_hub
    before = len(_audit(hub))
    once = _token(hub, uses=1)
    enroll(address, once, "a1", tmp_path / "a1")
    with pytest.raises(EnrollError, match="used_up"):
        enroll(address, once, "a2", tmp_path / "a2")
    short = _token(hub, ttl_s=0.5)
    time.sleep(0.6)
    with pytest.raises(EnrollError, match="expired"):
        enroll(address, short, "a3", tmp_path / "a3")
    revoked = _token(hub, uses=5)
    token_id = revoked.split(".", 1)[0]
    assert f"token {token_id} revoked" in _hub_cli(hub, "token", "revoke", token_id)
    with pytest.raises(EnrollError, match="revoked"):
        enroll(address, revoked, "a4", tmp_path / "a4")
    bad_secret = once.split(".")[0] + ".wrong." + once.rsplit(".", 1)[1]
    with pytest.raises(EnrollError, match="unknown_token"):
        enroll(address, bad_secret, "a5", tmp_path / "a5")
    assert not (tmp_path / "a2").exists() and not (tmp_path / "a5" / "agent.key").exists()
    assert _audit(hub)[before:] == [
        ("enroll", "dc1/a1", "ok"),
        ("enroll", "a2", "used_up"),
        ("enroll", "a3", "expired"),
        ("enroll", "a4", "revoked"),
        ("enroll", "a5", "unknown_token"),
    ]
    listing = _hub_cli(hub, "token", "list") + _hub_cli(hub, "token", "audit")
    assert "uses=1/1" in listing and "revoked" in listing and "expired" in listing
    assert "agent=dc1/a1" in listing and "unknown_token" in listing
    assert "wrong" not in listing


def test_an_agent_refuses_a_hub_whose_ca_does_not_match_the_pin(
    enroll_hub: tuple[HubHandle, str], tmp_path: Path
) -> None:
    hub, address = enroll_hub
    before = _audit(hub)
    token = _token(hub)
    forged = token.rsplit(".", 1)[0] + "." + "0" * 64  # as if a man in the middle answered
    with pytest.raises(EnrollError, match="does not match the token's pin"):
        enroll(address, forged, "a1", tmp_path / "a1")
    assert _audit(hub) == before  # the secret was never sent


def test_certificate_renews_at_two_thirds_of_its_life_without_dropping_data(
    enroll_hub: tuple[HubHandle, str], tmp_path: Path
) -> None:
    hub, _ = enroll_hub
    out = tmp_path / "certs"
    now = dt.datetime.now(dt.UTC)
    pair = pki.issue(hub.ca, "short", agent_uri="dc1/short", days=6 / 86400, not_before=now)
    pki.write_pair(pair, out / "short.pem", out / "short.key")
    (out / "ca.pem").write_bytes(hub.ca.cert.read_bytes())
    tls = {
        "ca_file": str(out / "ca.pem"),
        "cert_file": str(out / "short.pem"),
        "key_file": str(out / "short.key"),
    }
    start_ms = (int(time.time()) - 3600) * 1000
    ticks = 70
    device = {
        "kind": "sequence",
        "ticks": ticks,
        "ticks_per_poll": 1,
        "interval_s": 0.1,
        "start_ms": start_ms,
    }
    cfg = write_agent_config(tmp_path / "agent.yaml", hub, tls, devices=[device])
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        agent.wait_log("certificate renewed", timeout=15)
        time.sleep(2.5)  # the original certificate has expired by now; delivery goes on with the new one
        wait_for(
            lambda: _agent(hub, "dc1/short").get("points_received") == ticks,
            timeout=30,
            what="every point delivered across the renewal",
        )
    finally:
        agent.stop()
    renewed = x509.load_pem_x509_certificate((out / "short.pem").read_bytes())
    assert renewed.not_valid_after_utc - now > dt.timedelta(days=80)
    assert identity_from_pem((out / "short.pem").read_bytes()) == "dc1/short"
    assert stat.S_IMODE((out / "short.key").stat().st_mode) == 0o600
    assert _agent(hub, "dc1/short")["duplicates"] == 0
    assert ("renew", "dc1/short", "ok") in _audit(hub)


async def test_a_revoked_agent_is_refused_within_seconds_and_cannot_renew(
    enroll_hub: tuple[HubHandle, str], tmp_path: Path
) -> None:
    hub, _ = enroll_hub
    tls = hub.issue_agent("bad", tmp_path / "certs", site="dc1")
    t = GrpcTransport(
        hub.grpc_address,
        ca_pem=Path(tls["ca_file"]).read_bytes(),
        cert_pem=Path(tls["cert_file"]).read_bytes(),
        key_pem=Path(tls["key_file"]).read_bytes(),
        server_name="localhost",
        timeout_s=5,
    )
    await t.start()
    try:
        await t.send(metrics_item(1).envelope)
        _hub_cli(hub, "agent", "revoke", "dc1/bad")
        revoked_at = time.monotonic()  # timed from the revocation, not from the CLI's start-up
        while True:
            try:
                await t.send(metrics_item(2).envelope)
            except DeliveryRejected as exc:  # the first refusal is what we are timing
                refusal = exc
                break
            assert time.monotonic() - revoked_at < 60
            time.sleep(0.2)
    finally:
        await t.aclose()
    assert time.monotonic() - revoked_at < 5
    assert "revoked" in str(refusal)
    _, csr = new_key_and_csr("bad")
    with pytest.raises(DeliveryRejected, match="agent_revoked"):
        await renew_certificate(
            hub.grpc_address,
            csr,
            ca_pem=Path(tls["ca_file"]).read_bytes(),
            cert_pem=Path(tls["cert_file"]).read_bytes(),
            key_pem=Path(tls["key_file"]).read_bytes(),
            server_name="localhost",
        )
    assert ("renew", "dc1/bad", "agent_revoked") in _audit(hub)


def test_a_revoked_agent_enrolling_again_leaves_the_token_uses_unchanged_and_is_audited(
    enroll_hub: tuple[HubHandle, str], tmp_path: Path
) -> None:
    hub, address = enroll_hub
    token = _token(hub, uses=3)
    token_id = token.split(".", 1)[0]
    enroll(address, token, "gone", tmp_path / "first")
    _hub_cli(hub, "agent", "revoke", "dc1/gone")
    before = len(_audit(hub))
    with pytest.raises(EnrollError, match="agent_revoked"):
        enroll(address, token, "gone", tmp_path / "again")
    (info,) = [t for t in _enroll_db(hub).list_tokens() if t.id == token_id]
    assert (info.uses, info.max_uses) == (1, 3)
    assert _audit(hub)[before:] == [("enroll", "dc1/gone", "agent_revoked")]
    assert not (tmp_path / "again" / "agent.key").exists()
