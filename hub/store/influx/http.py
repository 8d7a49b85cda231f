"""Plain HTTP to InfluxDB's v1 endpoints (`/query`, `/write`), which influxdb-client does not cover.

Errors are classified once here: no answer, 429 and 5xx are transient; other 4xx are permanent. The token
travels only in the Authorization header and never appears in an error message.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from pydantic import SecretStr

from hub.store.errors import StoreError
from shared.errors import TransientError

# Statuses that mean "the same request may succeed later": rate limiting and server trouble.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_ERROR_TEXT = 300


class InfluxHttp:
    """POSTs to one InfluxDB server."""

    def __init__(self, url: str, token: SecretStr | None, timeout_s: float) -> None:
        self._base = url.rstrip("/")
        self._token = token
        self._timeout = timeout_s

    def post(self, path: str, params: dict[str, str], body: bytes, content_type: str) -> bytes:
        """POSTs `body` and returns the response body.

        Raises:
            TransientError: no answer, or a status worth retrying.
            StoreError: any other non-2xx status.
        """
        headers = {"Content-Type": content_type}
        if self._token is not None:
            # "Token" is accepted by InfluxDB 2.x and 3.x, and by 1.8+ as `Token user:password`.
            headers["Authorization"] = f"Token {self._token.get_secret_value()}"
        url = f"{self._base}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()[:_MAX_ERROR_TEXT].decode(errors="replace")
            raise status_error(exc.code, f"InfluxDB {path} answered {exc.code}: {text}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TransientError(f"InfluxDB {self._base}{path} unreachable: {exc}") from None


def status_error(status: int, message: str) -> TransientError | StoreError:
    """The error an HTTP status from InfluxDB maps to (shared with the v2 write path)."""
    if status in _TRANSIENT_STATUSES or status in (401, 403):
        # Auth failures are an operator fix away: keep batches on the agents rather than drop them.
        return TransientError(message)
    return StoreError(message, status)
