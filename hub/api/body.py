"""Reading a pushed request's body within a size limit, for every receiver that takes raw bodies
(line protocol, remote write, signed webhooks): a declared length over the limit is refused unread, a
streamed (chunked) one at the first chunk past it, so no body is ever held whole before it is refused."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request


async def bounded_body(request: Request, limit: int, too_large: Callable[[], Exception]) -> bytes:
    """The body as sent; raises `too_large()` once it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large()
    return bytes(body)
