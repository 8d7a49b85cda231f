"""The hub's small certificate authority: makes the CA, the hub's server certificate and agent certificates.

EC P-256 keys, PEM files, private keys written 0600. Agent certificates carry their identity as a SAN
URI (`outpost://<site>/<agent>`) and as the CN.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.tls import AGENT_URI_SCHEME

CA_DAYS = 3650


@dataclass(frozen=True, slots=True)
class CertPair:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class CaPaths:
    """Where the CA lives under the hub's data dir."""

    root: Path

    @property
    def cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def key(self) -> Path:
        return self.root / "ca.key"


def write_private(path: Path, data: bytes) -> None:
    """Writes a secret file with 0600 permissions from the first byte (no window where it is readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def init_ca(paths: CaPaths, name: str = "Outpost CA") -> bool:
    """Creates the CA if it does not exist. Returns True when it was created."""
    if paths.cert.exists() and paths.key.exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(paths.key, _key_pem(key))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def _load_ca(paths: CaPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("CA key is not an EC key")
    return cert, key


def sign(
    paths: CaPaths,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    *,
    server_names: tuple[str, ...] = (),
    agent_uri: str | None = None,
    days: float = 90,
    not_before: dt.datetime | None = None,
) -> bytes:
    """Signs a certificate for `public_key`; returns its PEM. `server_names` makes it a server cert."""
    ca_cert, ca_key = _load_ca(paths)
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    sans: list[x509.GeneralName] = []
    for n in server_names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    if agent_uri:
        sans.append(x509.UniformResourceIdentifier(AGENT_URI_SCHEME + agent_uri))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def issue(
    paths: CaPaths,
    common_name: str,
    *,
    server_names: tuple[str, ...] = (),
    agent_uri: str | None = None,
    days: float = 90,
    not_before: dt.datetime | None = None,
) -> CertPair:
    """Generates a key and a certificate signed by the CA (for `cert issue` and the hub's own cert)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sign(
        paths,
        key.public_key(),
        common_name,
        server_names=server_names,
        agent_uri=agent_uri,
        days=days,
        not_before=not_before,
    )
    return CertPair(cert, _key_pem(key))


def write_pair(pair: CertPair, cert_path: Path, key_path: Path) -> None:
    """Writes a certificate (0644) and its key (0600)."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(pair.cert_pem)
    write_private(key_path, pair.key_pem)
