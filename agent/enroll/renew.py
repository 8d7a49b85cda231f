"""Automatic certificate renewal at a share (default 2/3) of the certificate's lifetime.

A fresh key and CSR are made here, the hub signs the CSR over the agent's current mTLS identity, the new
pair replaces the old one atomically on disk (agent.enroll.enroll.install_pair), and `on_renewed` lets the
runtime switch delivery to a transport built from the new files. Delivery never stops for it: batches
in flight on the old transport are retried from the spool. Failures retry with jitter and are logged
once until the next success.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from agent.enroll.enroll import TlsFiles, install_pair, new_key_and_csr
from shared.clock import Clock, SystemClock
from shared.errors import OutpostError
from shared.logging import UpDown

log = logging.getLogger(__name__)

# Signs a CSR (DER) with the current identity and returns the new certificate (PEM).
RenewCall = Callable[[bytes], Awaitable[bytes]]

_MAX_SLEEP_S = 3600.0
_RETRY_MIN_S, _RETRY_MAX_S = 5.0, 300.0


def renewal_due_ms(cert_pem: bytes, share: float) -> int:
    """Wall time (ms) when `share` of the certificate's validity has passed."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    start = cert.not_valid_before_utc.timestamp() * 1000
    end = cert.not_valid_after_utc.timestamp() * 1000
    return int(start + share * (end - start))


class CertRenewer:
    """Runs the renewal loop; `aclose` is safe without `start` and safe twice."""

    def __init__(
        self,
        files: TlsFiles,
        share: float,
        renew: RenewCall,
        on_renewed: Callable[[], Awaitable[None]],
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._files = files
        self._share = share
        self._renew = renew
        self._on_renewed = on_renewed
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cert-renewal")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The renewal loop once started (the agent watches it for ending)."""
        return self._task

    async def _run(self) -> None:
        renewal = UpDown(log, "certificate renewal", self._clock)
        while True:
            try:
                due = renewal_due_ms(self._files.cert_file.read_bytes(), self._share)
                wait_s = (due - self._clock.now_ms()) / 1000
                if wait_s > 0:
                    await self._clock.sleep(min(wait_s, _MAX_SLEEP_S))
                    continue
                await self.renew_now()
            except (OutpostError, OSError, ValueError) as exc:
                renewal.down(f"will retry: {exc}")
                await self._clock.sleep(self._rng.uniform(_RETRY_MIN_S, _RETRY_MAX_S))
                continue
            renewal.up()

    async def renew_now(self) -> None:
        """One renewal: new key, CSR signed by the hub, pair installed, transport switched."""
        key_pem, csr_der = new_key_and_csr("renewal")
        cert_pem = await self._renew(csr_der)
        cert = x509.load_pem_x509_certificate(cert_pem)
        if _spki(cert.public_key()) != _spki(x509.load_der_x509_csr(csr_der).public_key()):
            raise ValueError("renewed certificate is not for the key we generated")
        install_pair(self._files, cert_pem, key_pem)
        self.renewals += 1
        log.info("certificate renewed, valid until %s", cert.not_valid_after_utc.isoformat())
        await self._on_renewed()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
