"""Write endpoints of other tools, so Telegraf, the InfluxDB clients and Prometheus push unchanged.

- `POST /api/v2/write?org=&bucket=&precision=` with `Authorization: Token <API key>` (InfluxDB 2.x);
- `POST /write?db=&precision=` with `u`/`p` or basic auth, the API key as the password (InfluxDB 1.x);
- `POST /api/v1/write`: Prometheus remote write 1.0 with `Authorization: Bearer <API key>`.

The body is line protocol, optionally gzip (`Content-Encoding: gzip`). Answers are InfluxDB's: 204 when
every line was stored; 400 `{"code": "invalid", "message": ...}` naming the first bad line (the good
lines of the batch are stored all the same, as InfluxDB 2.x does); 413 over the size limit; 415 for a
body that is not text; 401/403/429 from the API's authentication. The pushed points are stored as
the batch of an agent named `push:<key name>` (the store sets the `agent` label from it), so one
credential can never write into another source's or an agent's series.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from hub.api.auth import Caller, authorize_token, require
from hub.api.body import bounded_body
from hub.api.deps import Ctx
from hub.auth.principal import Principal
from hub.ingest.service import Ingestor
from hub.ingest.webhooks import lineprotocol, remote_write, telegraf_json
from hub.store.base import SeriesColumns
from shared.model import SeriesPoints

router = APIRouter(tags=["push"])

SCOPE = "ingest:write"
PUSH_AGENT_PREFIX = "push:"
# InfluxDB's default `max-body-size` is 25 MB; the limit holds for the body as sent and as unzipped.
MAX_BODY_BYTES = 25_000_000
TEXT_TYPES = frozenset({"", "text/plain", "application/octet-stream"})
MAX_PARAM = 256
REMOTE_WRITE_BODY: dict[str, Any] = {
    "requestBody": {"content": {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}}
}
# What the OpenAPI document shows as the request body.
LINE_PROTOCOL_BODY: dict[str, Any] = {
    "requestBody": {"content": {"text/plain": {"schema": {"type": "string", "format": "line-protocol"}}}}
}

Param = Annotated[str, Query(max_length=MAX_PARAM)]


@dataclass(frozen=True, slots=True)
class BodyFormat:
    """A pushed body's format: the content types that announce it and its parser."""

    name: str
    content_types: frozenset[str]
    parse: Callable[[str, int, int], lineprotocol.ParsedLines]


LINE_PROTOCOL = BodyFormat("line protocol", TEXT_TYPES, lineprotocol.parse)
JSON_BODY = BodyFormat("Telegraf JSON", frozenset({"application/json"}), telegraf_json.parse)


class PushRejected(Exception):
    """Raised for a request refused before parsing; carries the HTTP status and InfluxDB's error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _influx_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


@router.post("/api/v2/write", status_code=204, response_class=Response, openapi_extra=LINE_PROTOCOL_BODY)
async def write_v2(
    request: Request,
    ctx: Ctx,
    org: Param = "",
    bucket: Param = "",
    precision: Param = "ns",
) -> Response:
    """Line protocol the InfluxDB 2.x way (`Authorization: Token <API key>`); `org` and `bucket` are
    accepted and ignored (everything lands in the hub's one store)."""
    return await _write(request, ctx, _token(request), precision, "influx_v2")


@router.post("/webhooks/telegraf", status_code=204, response_class=Response, openapi_extra=LINE_PROTOCOL_BODY)
async def telegraf(request: Request, ctx: Ctx, precision: Param = "") -> Response:
    """Telegraf's `outputs.http`: its JSON serializer (`application/json`; `precision` is the output's
    `json_timestamp_units`, default `s`) or line protocol (`text/plain`; default `ns`), with
    `Authorization: Token <API key>` (or `Bearer`)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "application/json":
        return await _write(request, ctx, _token(request), precision or "s", "telegraf", JSON_BODY)
    return await _write(request, ctx, _token(request), precision or "ns", "telegraf")


def _token(request: Request) -> str | None:
    """An `Authorization: Token <key>` (InfluxDB's scheme) or `Bearer <key>` credential."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("token", "bearer"):
        return None
    return credential.strip() or None


@router.post("/write", status_code=204, response_class=Response, openapi_extra=LINE_PROTOCOL_BODY)
async def write_v1(
    request: Request,
    ctx: Ctx,
    db: Param = "",
    rp: Param = "",
    precision: Param = "ns",
    u: Param = "",
    p: Param = "",
) -> Response:
    """Line protocol the InfluxDB 1.x way: the API key as the password, in `p` or basic auth (also
    `Authorization: Token`); `db` and `rp` are accepted and ignored."""
    return await _write(
        request, ctx, p or _v1_password(request.headers.get("authorization", "")), precision, "influx_v1"
    )


def _v1_password(header: str) -> str | None:
    """The password of a basic `Authorization` header, or an InfluxDB `Token` credential."""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "token":
        return credential.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


async def _write(
    request: Request,
    ctx: Ctx,
    token: str | None,
    precision: str,
    transport: str,
    body_format: BodyFormat = LINE_PROTOCOL,
) -> Response:
    ingestor = _ingestor(ctx)
    principal = await authorize_token(request, ctx, token, SCOPE)
    try:
        unit_ns = lineprotocol.ns_per_unit(precision)
        _content_type(request, body_format)
        text = _text(
            await bounded_body(request, MAX_BODY_BYTES, _too_large),
            request.headers.get("content-encoding", ""),
        )
    except lineprotocol.PrecisionError as exc:
        ctx.metrics.rejected.labels(transport, "precision").inc()
        return _influx_error(400, "invalid", str(exc))
    except PushRejected as exc:
        ctx.metrics.rejected.labels(transport, exc.code.replace(" ", "_")).inc()
        return _influx_error(exc.status, exc.code, exc.message)
    try:
        parsed = await ingestor.in_pool(body_format.parse, text, unit_ns, ctx.clock.now_ms())
    except ValueError as exc:  # a body that is not a batch at all (JSON that does not parse)
        ctx.metrics.rejected.labels(transport, "invalid").inc()
        return _influx_error(400, "invalid", str(exc)[:300])
    if parsed.bad_lines:
        ctx.metrics.rejected.labels(transport, "bad_line").inc(parsed.bad_lines)
    if parsed.string_fields:
        ctx.metrics.rejected.labels(transport, "string_field").inc(parsed.string_fields)
    refused = await _store(ingestor, principal, parsed.columns, transport)
    if refused is not None:
        return refused
    if parsed.first_error is not None:
        err = parsed.first_error
        stored = parsed.lines - parsed.bad_lines
        return _influx_error(
            400,
            "invalid",
            f"partial write: {stored} of {parsed.lines} lines stored; line {err.line}: {err.reason}",
        )
    return Response(status_code=204)


@router.post(
    "/api/v1/write",
    status_code=204,
    response_class=Response,
    openapi_extra=REMOTE_WRITE_BODY,
    dependencies=[require(SCOPE)],
)
async def prometheus_remote_write(request: Request, ctx: Ctx, caller: Caller) -> Response:
    """Prometheus remote write 1.0: a snappy-compressed protobuf `WriteRequest` (Prometheus's
    `remote_write` with `authorization: {credentials: <API key>}`). `__name__` is the metric, the other
    labels are labels; the pushing key's source is the `agent` label as for line protocol."""
    request.state.audited = True  # pushed data, not an operator's change: the audit log keeps changes
    ingestor = _ingestor(ctx)
    transport = "prometheus"
    try:
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if kind != "application/x-protobuf" or encoding != "snappy":
            raise PushRejected(
                415, "unsupported media type", "remote write is application/x-protobuf with snappy encoding"
            )
        body = await bounded_body(request, MAX_BODY_BYTES, _too_large)
        try:
            parsed = await ingestor.in_pool(remote_write.parse, body, MAX_BODY_BYTES)
        except remote_write.RemoteWriteError as exc:
            raise (_too_large() if exc.too_large else PushRejected(400, "invalid", str(exc))) from None
    except PushRejected as exc:
        ctx.metrics.rejected.labels(transport, exc.code.replace(" ", "_")).inc()
        return _influx_error(exc.status, exc.code, exc.message)
    if parsed.nameless:
        ctx.metrics.rejected.labels(transport, "nameless_series").inc(parsed.nameless)
    if parsed.nan_samples:
        ctx.metrics.rejected.labels(transport, "nan_sample").inc(parsed.nan_samples)
    return await _store(ingestor, caller, parsed.series, transport) or Response(status_code=204)


async def _store(
    ingestor: Ingestor, principal: Principal, series: tuple[SeriesPoints, ...] | SeriesColumns, transport: str
) -> Response | None:
    """Stores the series as the pushing source's batch; the answer to give when that failed."""
    if not len(series):
        return None
    outcome = await ingestor.ingest_series(PUSH_AGENT_PREFIX + principal.name, series, transport)
    if outcome.retry_after_ms:  # InfluxDB's and Prometheus's clients back off and retry on 503
        retry_s = str(max(1, -(-outcome.retry_after_ms // 1000)))
        return _influx_error(503, "unavailable", "hub busy; retry later", {"Retry-After": retry_s})
    if outcome.error:
        return _influx_error(400, "invalid", outcome.error)
    return None


def _ingestor(ctx: Ctx) -> Ingestor:
    if ctx.ingestor is None:
        raise HTTPException(503, "this hub process takes no pushed data (role: api); push to role all")
    return ctx.ingestor


def _content_type(request: Request, body_format: BodyFormat) -> None:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind not in body_format.content_types:
        raise PushRejected(
            415, "unsupported media type", f"content type {kind[:64]!r} is not {body_format.name}"
        )


def _text(body: bytes, encoding: str) -> str:
    """The body unzipped (bounded) and decoded; invalid UTF-8 is replaced, and its line then fails."""
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, MAX_BODY_BYTES)
        except zlib.error as exc:
            raise PushRejected(400, "invalid", f"gzip body could not be read: {exc}") from None
        if inflater.unconsumed_tail:
            raise _too_large()
    elif encoding not in ("", "identity"):
        raise PushRejected(415, "unsupported media type", f"content encoding {encoding[:32]!r} is not gzip")
    return body.decode("utf-8", "replace")


def _too_large() -> PushRejected:
    return PushRejected(413, "request too large", f"body over {MAX_BODY_BYTES} bytes (sent or unzipped)")
