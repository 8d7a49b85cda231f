"""Real SNMP and Redfish peers for the collector tests: snmpsim, Debian snmpd, sushy-static, sushy-emulator.

Every peer listens on 127.0.0.1, is started here as a subprocess and stopped by PID in `finally`.
snmpsim serves recorded devices from the `snmpsim-data` wheel (cut to what the profiles read, see
recordings.py) plus the .snmprec files in fixtures/snmprec/ (writecache records a test can SET,
numeric counters that grow, an error record).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.collect.snmp.profiles import profiles_for
from tests.collect.bmc_server import BmcServer
from tests.collect.recordings import materialize, profile_prefixes
from tests.support.procs import Service, free_port, start_service

FIXTURES = Path(__file__).with_name("fixtures")
VENV_BIN = Path(sys.executable).parent
# Recorded devices (snmpsim-data path without suffix -> community the tests use).
RECORDED = {
    "network/switch/cisco-c3560": "cisco-c3560",
    "cloud/arista-dcs-7150s-52-cl": "arista-7150s",
    "UPS/apc-8932": "apc-8932",
    "UPS/eaton-93e-80": "eaton-93e",
}


@dataclass
class SnmpPeer:
    service: Service
    port: int
    data_dir: Path

    def write_device(self, community: str, records: dict[str, tuple[int, object]]) -> None:
        """Rewrites a device's .snmprec (oid -> (type tag, value)); snmpsim re-indexes a file whose
        mtime changed, so the next request sees the new values. mtime only has 1 s resolution there,
        hence the explicit bump."""
        path = self.data_dir / f"{community}.snmprec"
        lines = sorted(records.items(), key=lambda kv: tuple(int(p) for p in kv[0].split(".")))
        before = path.stat().st_mtime if path.exists() else 0.0
        path.write_text("".join(f"{oid}|{tag}|{value}\n" for oid, (tag, value) in lines))
        bumped = max(before + 1, path.stat().st_mtime)
        os.utime(path, (bumped, bumped))


def snmp_get_cli(port: int, community: str, oid: str, attempts: int = 30) -> str:
    """One GET with net-snmp's snmpget, retried every second: a just-started agent drops early requests."""
    out = subprocess.run(
        [
            "snmpget",
            "-v2c",
            "-c",
            community,
            "-t",
            "1",
            "-r",
            str(attempts - 1),
            "-On",
            f"127.0.0.1:{port}",
            oid,
        ],
        capture_output=True,
        text=True,
        timeout=attempts + 5,
    )
    return out.stdout


def start_snmpsim(data_dir: Path, cache_dir: Path, log_dir: Path, port: int) -> Service:
    """snmpsim refuses to run as root unless SNMPSIM_ALLOW_ROOT=true (dropping to `nobody` would lose
    access to an interpreter living under /root); the cache dir must be writable."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    svc = start_service(
        "snmpsim",
        [
            str(VENV_BIN / "snmpsim-command-responder"),
            f"--data-dir={data_dir}",
            f"--cache-dir={cache_dir}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}",
            "--max-var-binds=128",
        ],
        log_dir,
        ready_log=r"Listening at UDP/IPv4 endpoint",
        timeout=120,
        env={"SNMPSIM_ALLOW_ROOT": "true"},
    )
    return svc


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpPeer]:
    root = tmp_path_factory.mktemp("snmpsim")
    data = root / "data"
    data.mkdir()
    prefixes = profile_prefixes(profiles_for(None))
    for rel, community in RECORDED.items():
        materialize(rel, data / f"{community}.snmprec", prefixes)
    for f in (FIXTURES / "snmprec").glob("*.snmprec"):
        shutil.copyfile(f, data / f.name)
    shutil.copyfile(data / "lab-growing.snmprec", data / "lab-counters.snmprec")
    port = free_port(socket.SOCK_DGRAM)
    svc = start_snmpsim(data, root / "cache", root, port)
    try:
        for community in (
            *RECORDED.values(),
            "lab-counters",
            "lab-growing",
            "lab-errors",
        ):  # first GET of a community builds its index
            snmp_get_cli(port, community, "1.3.6.1.2.1.1.3.0")
        yield SnmpPeer(svc, port, data)
    finally:
        svc.stop()


SNMPD_USERS = {
    # name: (auth, priv) as net-snmp spells them
    "u-md5-des": ("MD5", "DES"),
    "u-sha-aes": ("SHA", "AES"),
    "u-sha224": ("SHA-224", None),
    "u-sha256-aes": ("SHA-256", "AES"),
    "u-sha384-aes192": ("SHA-384", "AES-192"),
    "u-sha512-aes256": ("SHA-512", "AES-256"),
    "u-noauth": (None, None),
}
AUTH_KEY, PRIV_KEY = "auth-pass-123", "priv-pass-456"
COMMUNITY = "outpost-ro"


@dataclass
class SnmpdPeer:
    """Debian's snmpd; `restart()` brings it back with the same persistent dir (engine boots + 1)."""

    service: Service
    port: int
    conf: Path
    persist: Path
    log_dir: Path

    @classmethod
    def start(cls, root: Path, port: int | None = None) -> SnmpdPeer:
        conf, persist = root / "snmpd.conf", root / "persist"
        persist.mkdir(exist_ok=True)
        port = port or free_port(socket.SOCK_DGRAM)
        lines = [f"agentaddress udp:127.0.0.1:{port}", f"rocommunity {COMMUNITY} 127.0.0.1"]
        for user, (auth, priv) in SNMPD_USERS.items():
            spec = "".join(f' {a} "{k}"' for a, k in ((auth, AUTH_KEY), (priv, PRIV_KEY)) if a)
            lines += [
                f"createUser {user}{spec}",
                f"rouser {user} {'priv' if priv else 'auth' if auth else 'noauth'}",
            ]
        if not conf.exists():
            conf.write_text("\n".join(lines) + "\n")
        svc = start_service(
            "snmpd",
            ["/usr/sbin/snmpd", "-f", "-Lo", "-C", "-c", str(conf), "-M", "/dev/null", "-m", ""],
            root,
            ready_log=r"NET-SNMP version",
            env={"SNMP_PERSISTENT_DIR": str(persist)},
        )
        peer = cls(svc, port, conf, persist, root)
        snmp_get_cli(port, COMMUNITY, "1.3.6.1.2.1.1.3.0", attempts=5)
        return peer

    def restart(self) -> None:
        self.service.stop()
        self.service = SnmpdPeer.start(self.log_dir, self.port).service


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[SnmpdPeer]:
    peer = SnmpdPeer.start(tmp_path)
    try:
        yield peer
    finally:
        peer.service.stop()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A UDP port that receives and never answers: the device that went dark."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


os.environ.setdefault("MIBS", "")  # net-snmp CLI tools: no MIB loading noise


REDFISH_TREES = FIXTURES / "redfish"


@dataclass
class RedfishPeer:
    """sushy-static serving a copy of one mockup tree (tests may edit the copy: it is re-read per GET)."""

    service: Service
    url: str
    root: Path

    def resource(self, rel: str) -> Path:
        return self.root / rel / "index.json"


def start_sushy_static(tree: str, workdir: Path) -> RedfishPeer:
    root = workdir / tree
    shutil.copytree(REDFISH_TREES / tree, root)
    port = free_port()
    cmd = [str(VENV_BIN / "sushy-static"), "-i", "127.0.0.1", "-p", str(port), "-m", str(root)]
    svc = start_service(f"sushy-static-{tree}", cmd, workdir, port=port, timeout=30)
    return RedfishPeer(svc, f"http://127.0.0.1:{port}", root)


@pytest.fixture
def sushy_static(tmp_path: Path) -> Iterator[Callable[[str], RedfishPeer]]:
    """Starts sushy-static for a named tree under fixtures/redfish (any number per test)."""
    started: list[RedfishPeer] = []

    def start(tree: str) -> RedfishPeer:
        peer = start_sushy_static(tree, tmp_path / f"srv{len(started)}")
        started.append(peer)
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.service.stop()


BMC_USER, BMC_PASSWORD = "outpost", "Bmc-s3cret-7791"


@dataclass
class EmulatorPeer:
    """sushy-emulator --fake over HTTPS with enforced basic auth (BMC_USER / BMC_PASSWORD)."""

    service: Service
    url: str


@pytest.fixture(scope="session")
def sushy_emulator(
    tmp_path_factory: pytest.TempPathFactory, self_signed_cert: tuple[Path, Path]
) -> Iterator[EmulatorPeer]:
    """The emulator reads its settings from a Python config file: SUSHY_EMULATOR_AUTH_FILE is an
    htpasswd file whose passwords must be bcrypt (cost 4 keeps each request's check cheap)."""
    import bcrypt  # sushy-tools' own dependency, needed only to write its htpasswd file

    d = tmp_path_factory.mktemp("sushy-emulator")
    htpasswd, conf = d / "htpasswd", d / "emulator.conf"
    digest = bcrypt.hashpw(BMC_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{BMC_USER}:{digest}\n")
    conf.write_text(f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n")
    port = free_port()
    cmd = [
        str(VENV_BIN / "sushy-emulator"),
        "--fake",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "--ssl-certificate",
        str(self_signed_cert[0]),
        "--ssl-key",
        str(self_signed_cert[1]),
    ]
    svc = start_service(
        "sushy-emulator", cmd, d, port=port, timeout=30, env={"SUSHY_EMULATOR_CONFIG": str(conf)}
    )
    try:
        yield EmulatorPeer(svc, f"https://127.0.0.1:{port}")
    finally:
        svc.stop()


@pytest.fixture
async def bmc_server(tmp_path: Path, self_signed_cert: tuple[Path, Path]) -> AsyncIterator[BmcServer]:
    """The session-aware test BMC (bmc_server.py) serving a copy of the OpenBMC subsystems tree."""
    tree = tmp_path / "tree"
    shutil.copytree(REDFISH_TREES / "openbmc-subsystems", tree)
    server = BmcServer(tree, BMC_USER, BMC_PASSWORD, self_signed_cert)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (what a BMC ships with)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "bmc.crt", d / "bmc.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
