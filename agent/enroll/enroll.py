"""Enrolling with a hub: a fresh key made here, a CSR sent with a one-time token, a certificate back.

The token is `<id>.<secret>.<pin>` (printed by `outpost-hub token create`); `<pin>` is the SHA-256 of
the hub CA's certificate. Enrollment, kubeadm-style:
1. fetch the CA certificate over TLS that cannot be verified yet, and keep it only if its hash is the pin;
2. send `<id>.<secret>`, the wanted agent name and a CSR over TLS verified against that CA;
3. store the certificate, the key (0600, never sent anywhere) and the CA.
A man in the middle fails step 1 (wrong CA) or step 2 (cannot present a certificate from the real CA),
so it learns neither the secret nor anything it could use.

Key and certificate files are replaced atomically as a pair (see `install_pair`), which renewal uses too.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared import codec
from shared.errors import CodecError, OutpostError

_PIN = re.compile(r"^[0-9a-f]{64}$")
_TIMEOUT_S = 15.0


class EnrollError(OutpostError):
    """Raised when enrollment fails: bad token, CA pin mismatch, hub refusal (with its reason), I/O."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the agent's identity lives; the paths go into agent.yaml's `hub.tls`."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def parse_token(token: str) -> tuple[str, str]:
    """Splits `<id>.<secret>.<pin>` into what is sent (`<id>.<secret>`) and the CA pin (kept)."""
    secret, _, pin = token.strip().rpartition(".")
    if not secret or "." not in secret or not _PIN.match(pin):
        raise EnrollError("malformed token: expected <id>.<secret>.<sha256 of the hub CA>")
    return secret, pin


def new_key_and_csr(name: str) -> tuple[bytes, bytes]:
    """A fresh EC P-256 key (PEM) and a CSR for it (DER); the hub sets the identity, not the CSR."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, csr.public_bytes(serialization.Encoding.DER)


def fetch_pinned_ca(host: str, port: int, pin: str) -> bytes:
    """GET /v1/ca.pem without verifying the server, then accept the CA only if its SHA-256 is `pin`."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # nothing secret is sent; the answer is checked against the pin
    status, body = _request(
        http.client.HTTPSConnection(host, port, context=ctx, timeout=_TIMEOUT_S), "GET", "/v1/ca.pem"
    )
    if status != 200:
        raise EnrollError(f"hub answered {status} for its CA certificate")
    try:
        der = x509.load_pem_x509_certificate(body).public_bytes(serialization.Encoding.DER)
    except ValueError:
        raise EnrollError("hub sent something that is not a certificate") from None
    if hashlib.sha256(der).hexdigest() != pin:
        raise EnrollError("the hub's CA does not match the token's pin: refusing to enroll")
    return body


def enroll(hub: str, token: str, name: str, out_dir: Path) -> TlsFiles:
    """Enrolls as `name` with the hub's enrollment listener at `hub` (HOST:PORT); returns the files written.

    HOST must be a name the hub's certificate carries (`grpc.server_names` in hub.yaml).

    Raises:
        EnrollError: with the reason (the hub's refusal reason when it refused).
    """
    host, _, port_text = hub.rpartition(":")
    if not host or not port_text.isdigit():
        raise EnrollError(f"--hub must be HOST:PORT, got {hub!r}")
    secret, pin = parse_token(token)
    ca_pem = fetch_pinned_ca(host, int(port_text), pin)
    key_pem, csr_der = new_key_and_csr(name)
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    conn = http.client.HTTPSConnection(host, int(port_text), context=ctx, timeout=_TIMEOUT_S)
    body = codec.encode_enroll_request(codec.EnrollRequest(secret, name, csr_der))
    status, answer = _request(conn, "POST", "/v1/enroll", body)
    if status != 200:
        raise EnrollError(f"hub refused enrollment: {answer.decode(errors='replace').strip()[:100]}")
    try:
        resp = codec.decode_enroll_response(answer)
    except CodecError as exc:
        raise EnrollError(f"unreadable answer from the hub: {exc}") from None
    files = TlsFiles(out_dir / "ca.pem", out_dir / "agent.pem", out_dir / "agent.key")
    install_pair(files, resp.certificate_pem, key_pem)
    _write_atomic(files.ca_file, resp.ca_pem)
    return files


def install_pair(files: TlsFiles, cert_pem: bytes, key_pem: bytes) -> None:
    """Replaces key and certificate so that a crash at any point leaves a usable pair.

    Both are written to `.next` files and fsynced, then the key and the certificate are renamed into
    place; `finish_install` (run at start-up) completes a pair a crash interrupted between the renames.
    """
    files.cert_file.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(_next(files.key_file), key_pem)
    _write_atomic(_next(files.cert_file), cert_pem)
    os.replace(_next(files.key_file), files.key_file)
    os.replace(_next(files.cert_file), files.cert_file)


def finish_install(files: TlsFiles) -> None:
    """Completes an `install_pair` interrupted by a crash (the `.next` files are complete once present)."""
    for path in (files.key_file, files.cert_file):
        if _next(path).exists():
            os.replace(_next(path), path)


def _next(path: Path) -> Path:
    return path.with_name(path.name + ".next")


def _write_atomic(path: Path, data: bytes) -> None:
    """Writes via a temp file created 0600 (readable by no one else from the first byte), then renames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _request(
    conn: http.client.HTTPSConnection,
    method: str,
    path: str,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    try:
        headers = {"Content-Type": "application/x-protobuf"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(1024 * 1024)
    except (OSError, http.client.HTTPException) as exc:
        raise EnrollError(f"cannot reach the hub's enrollment listener: {exc}") from None
    finally:
        conn.close()
