"""Reading certificates and the identity they carry (the only source of agent identity)."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from shared.errors import OutpostError

# SAN URI scheme for agent certificates: outpost://<site>/<agent-id>.
AGENT_URI_SCHEME = "outpost://"


class CertificateError(OutpostError):
    """Raised when a certificate is unreadable or carries no usable identity."""


def identity_from_pem(pem: bytes) -> str:
    """Returns the agent identity of a client certificate: the SAN URI's `site/agent`, else the CN.

    Raises:
        CertificateError: not a PEM certificate, or neither a SAN URI nor a CN is present.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateError("not a PEM certificate") from exc
    return identity_of(cert)


def identity_of(cert: x509.Certificate) -> str:
    """Identity of a parsed certificate (see identity_from_pem)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(AGENT_URI_SCHEME):
                return uri[len(AGENT_URI_SCHEME) :]
    except x509.ExtensionNotFound:
        pass
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        raise CertificateError("certificate has no identity (no outpost:// SAN URI, no CN)")
    return str(cns[0].value)
