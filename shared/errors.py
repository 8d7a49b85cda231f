"""Error tree shared by agent and hub. Permanent vs transient is a property of the error class."""

from __future__ import annotations


class OutpostError(Exception):
    """Base of every error Outpost raises on purpose."""

    permanent: bool = True


class CodecError(OutpostError):
    """Raised when an envelope or batch cannot be decoded or violates the wire contract.

    Permanent: re-sending the same bytes will fail the same way, so receivers count and drop it.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class TransientError(OutpostError):
    """Raised when an operation may succeed if retried later (peer down, overload, timeout)."""

    permanent = False

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfigError(OutpostError):
    """Raised when a config file is missing, unparsable or invalid; the message carries the field path."""
