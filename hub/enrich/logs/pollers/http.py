"""The pollers' HTTP: `hub.http_client` requests whose failures become `PollError`s, labelled for the
errors counter (`connect`, `timeout`, `parse` for an oversized answer, `auth` for 401/403, else
`status`). Texts carry the status, the first bytes of the answer and the URL without query; the poller
scrubs its secrets from them before logging.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from hub import http_client
from hub.enrich.logs.pollers.base import PollError
from hub.http_client import HttpError, Response, Session

_USER_AGENT = "outpost-hub-logs/1"
_KINDS = {"connect": "connect", "timeout": "timeout", "too_large": "parse"}


def new_session(timeout_s: float) -> Session:
    """A session whose every connect and socket read is bounded by `timeout_s`."""
    return http_client.new_session(timeout_s, _USER_AGENT)


async def post_json(
    session: Session,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    total_s: float,
    max_bytes: int,
) -> Response:
    """POSTs `body` as JSON; returns any status with its headers and body (at most `max_bytes`).

    Raises:
        PollError: no connection, a timeout, or an answer longer than `max_bytes`.
    """
    try:
        return await http_client.post(session, url, headers, json=body, total_s=total_s, max_bytes=max_bytes)
    except HttpError as exc:
        raise poll_error(exc) from None


async def post_lines(
    session: Session,
    url: str,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    total_s: float,
    max_line_bytes: int,
) -> AsyncGenerator[bytes | None, None]:
    """POSTs `form` and yields the answer's lines as they stream in (`http_client.post_lines`).

    Raises:
        PollError: no connection, a timeout, or a non-2xx answer.
    """
    stream = http_client.post_lines(
        session, url, form, headers, total_s=total_s, max_line_bytes=max_line_bytes
    )
    try:
        async with contextlib.aclosing(stream) as lines:  # closes the response when our caller stops early
            async for line in lines:
                yield line
    except HttpError as exc:
        raise poll_error(exc) from None


def status_error(resp: Response, url: str) -> PollError:
    """The error of a non-2xx answer: `auth` for 401/403, else `status` (Retry-After kept)."""
    return poll_error(http_client.status_error(url, resp.status, resp.body, resp.headers))


def poll_error(exc: HttpError) -> PollError:
    if exc.kind == "status":
        kind = "auth" if exc.status in (401, 403) else "status"
    else:
        kind = _KINDS[exc.kind]
    return PollError(kind, str(exc), exc.retry_after_s)
