"""Errors raised by the Redfish session; each carries the device and the resource path."""

from __future__ import annotations

from shared.errors import OutpostError


class RedfishError(OutpostError):
    """Base of Redfish failures."""

    permanent = False

    def __init__(self, device: str, message: str, path: str = "", status: int = 0) -> None:
        super().__init__(f"{device}: {message}" + (f" ({path})" if path else ""))
        self.device, self.path, self.status = device, path, status


class RedfishUnavailable(RedfishError):
    """Raised when the BMC cannot be reached or does not answer in time (transient)."""


class RedfishBusy(RedfishError):
    """Raised on 503/429: the BMC asks us to back off for `retry_after_s`."""

    def __init__(self, device: str, path: str, status: int, retry_after_s: float) -> None:
        super().__init__(device, f"busy (HTTP {status}), retry after {retry_after_s:.0f}s", path, status)
        self.retry_after_s = retry_after_s


class RedfishAuthError(RedfishError):
    """Raised when the BMC rejects our credentials or session (401/403): permanent until config changes."""

    permanent = True


class RedfishNotFound(RedfishError):
    """Raised on 404 for a resource a link pointed to (firmware bugs: skipped, not fatal)."""

    permanent = True


class RedfishBadResponse(RedfishError):
    """Raised on any other HTTP error or a body that is not a JSON object."""
