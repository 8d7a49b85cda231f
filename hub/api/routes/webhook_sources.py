"""`/api/v1/webhook-sources`: the senders of `/webhooks/generic/{source_id}`, managed by admins.

A source's secret is in the answer that made it only (create, rotate); afterwards only its id and last
characters are shown. Every change is audited with the source before and after, never a secret. A
mapping is compiled when it is saved: a bad JMESPath expression is a 400 naming the field
(`mapping.fields.title`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.api.auth import Caller, client_ip, require
from hub.api.deps import Ctx, HubContext
from hub.auth.principal import Principal
from hub.ingest.sources.repository import SourceError, WebhookSources
from hub.ingest.webhooks.mapping import MAX_EXPRESSION, CompiledMapping, Kind, MappingError, compile_mapping
from hub.ingest.webhooks.signature import BODY, TIMESTAMP, Encoding, Mode, valid_signed

router = APIRouter(prefix="/api/v1", tags=["webhook sources"])

SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_SOURCE_ID = Path(max_length=64, pattern=SLUG)
_SECRET_ID = Path(max_length=32, pattern=r"^[0-9a-f]{1,32}$")
HeaderName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Expression = Annotated[str, Field(max_length=2 * MAX_EXPRESSION)]


class SignatureIn(BaseModel):
    """How the source signs its deliveries (`hub.ingest.webhooks.signature.Scheme`) and the header whose
    value is remembered to refuse replays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: HeaderName = "X-Signature"
    mode: Mode = Mode.HMAC
    algorithm: Literal["sha256", "sha512", "sha1"] = "sha256"
    prefix: Annotated[str, Field(max_length=32)] = ""
    encoding: Encoding = Encoding.HEX
    timestamp_header: HeaderName | None = None
    window_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    signed: Annotated[str, Field(min_length=len(BODY), max_length=64)] = BODY
    replay_header: HeaderName | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SignatureIn:
        if not valid_signed(self.signed):
            raise ValueError(f"signed must end with {BODY} and hold {TIMESTAMP} at most once")
        if TIMESTAMP in self.signed and self.timestamp_header is None:
            raise ValueError(f"signed holds {TIMESTAMP}: set timestamp_header")
        return self


class MappingIn(BaseModel):
    """JMESPath expressions per field (over the preset's, if any), and the status words that resolve."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: Annotated[dict[Annotated[str, Field(max_length=32)], Expression], Field(max_length=16)] = {}
    resolved_values: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]], Field(max_length=16)] | None
    ) = None


class SourcePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    kind: Kind | None = None
    preset: Literal["alertmanager", "grafana"] | None = None
    signature: SignatureIn | None = None
    mapping: MappingIn | None = None


class SourceIn(SourcePatch):
    id: Annotated[str, Field(pattern=SLUG, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=128)]
    kind: Kind = Kind.ALERTS
    signature: SignatureIn = SignatureIn()


def sources_of(ctx: HubContext) -> WebhookSources:
    """The webhook sources, or a 503 in a process built without them."""
    if ctx.sources is None:
        raise HTTPException(503, "this hub process keeps no webhook sources")
    return ctx.sources


def checked_mapping(kind: str, preset: str | None, stored: dict[str, Any] | None) -> CompiledMapping:
    """A stored (or about to be stored) mapping, compiled.

    Raises:
        HTTPException: 400 `{"path": "mapping.fields.title", "message": ...}` for a bad one.
    """
    stored = stored or {}
    resolved = stored.get("resolved_values")
    try:
        return compile_mapping(
            Kind(kind),
            preset,
            stored.get("fields") or {},
            tuple(resolved) if resolved is not None else None,
        )
    except MappingError as exc:
        raise HTTPException(400, {"path": exc.path, "message": exc.message}) from None


@router.get("/webhook-sources", dependencies=[require("webhooks:read")])
async def list_sources(ctx: Ctx) -> dict[str, Any]:
    """Every source with its settings and its secrets' ids and hints; never a secret."""
    found = await ctx.queries.run("webhook-sources", sources_of(ctx).list_sources)
    return {"sources": [s.as_json() for s in found]}


@router.get("/webhook-sources/{source_id}", dependencies=[require("webhooks:read")])
async def get_source(ctx: Ctx, source_id: Annotated[str, _SOURCE_ID]) -> dict[str, Any]:
    return (await _run(ctx, sources_of(ctx).get, source_id)).as_json()


@router.post("/webhook-sources", status_code=201, dependencies=[require("webhooks:write")])
async def create_source(ctx: Ctx, caller: Caller, request: Request, body: SourceIn) -> dict[str, Any]:
    """Makes a source. `secret` is shown in this answer only: configure the sender with it now."""
    stored = _stored(body.model_dump(mode="json"))
    checked_mapping(stored["kind"], stored["preset"], stored["mapping"])
    source, secret_id, secret = await _run(
        ctx, sources_of(ctx).create, stored, caller.actor, ctx.clock.now_ms()
    )
    await _audit(ctx, request, caller, "webhook_source.create", source.id, None, source.as_json())
    return {**source.as_json(), "secret_id": secret_id, "secret": secret}


@router.patch("/webhook-sources/{source_id}", dependencies=[require("webhooks:write")])
async def update_source(
    ctx: Ctx, caller: Caller, request: Request, source_id: Annotated[str, _SOURCE_ID], body: SourcePatch
) -> dict[str, Any]:
    """Changes the fields given (`"preset": null` drops the preset); the result is validated whole."""
    sources = sources_of(ctx)
    before = await _run(ctx, sources.get, source_id)
    changes = _stored(body.model_dump(mode="json", include=body.model_fields_set))
    merged = {"kind": before.kind, "preset": before.preset, "mapping": before.mapping, **changes}
    checked_mapping(merged["kind"], merged["preset"], merged["mapping"])
    after = await _run(ctx, sources.update, source_id, changes, ctx.clock.now_ms())
    await _audit(ctx, request, caller, "webhook_source.update", source_id, before.as_json(), after.as_json())
    return after.as_json()


@router.delete("/webhook-sources/{source_id}", dependencies=[require("webhooks:write")])
async def delete_source(
    ctx: Ctx, caller: Caller, request: Request, source_id: Annotated[str, _SOURCE_ID]
) -> dict[str, Any]:
    """Deletes a source and its secrets: its deliveries are answered 404 from now on."""
    before = await _run(ctx, sources_of(ctx).delete, source_id)
    await _audit(ctx, request, caller, "webhook_source.delete", source_id, before.as_json(), None)
    return before.as_json()


@router.post(
    "/webhook-sources/{source_id}/secrets", status_code=201, dependencies=[require("webhooks:write")]
)
async def rotate_secret(
    ctx: Ctx, caller: Caller, request: Request, source_id: Annotated[str, _SOURCE_ID]
) -> dict[str, Any]:
    """Adds the source's second secret (409 when two are active): both verify until the old one is
    retired. `secret` is shown in this answer only."""
    source, secret_id, secret = await _run(ctx, sources_of(ctx).rotate, source_id, ctx.clock.now_ms())
    await _audit(ctx, request, caller, "webhook_source.rotate", source_id, None, source.as_json())
    return {**source.as_json(), "secret_id": secret_id, "secret": secret}


@router.delete("/webhook-sources/{source_id}/secrets/{secret_id}", dependencies=[require("webhooks:write")])
async def retire_secret(
    ctx: Ctx,
    caller: Caller,
    request: Request,
    source_id: Annotated[str, _SOURCE_ID],
    secret_id: Annotated[str, _SECRET_ID],
) -> dict[str, Any]:
    """Retires an active secret (409 for the last one): deliveries signed with it fail from now on."""
    source = await _run(ctx, sources_of(ctx).retire, source_id, secret_id, ctx.clock.now_ms())
    await _audit(
        ctx, request, caller, "webhook_source.retire", source_id, {"secret_id": secret_id}, source.as_json()
    )
    return source.as_json()


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    """The REST model's fields as the table keeps them (an empty mapping is no mapping)."""
    if "mapping" in fields and fields["mapping"] == {"fields": {}, "resolved_values": None}:
        fields["mapping"] = None
    return fields


async def _run(ctx: Ctx, fn: Any, *args: Any) -> Any:
    """A blocking call of the sources, its refusal as the HTTP answer it names."""
    try:
        return await asyncio.to_thread(fn, *args)
    except SourceError as exc:
        raise HTTPException(exc.status, exc.detail) from None


async def _audit(
    ctx: Ctx, request: Request, caller: Principal, action: str, source_id: str, before: Any, after: Any
) -> None:
    """Records the change with the source before and after (the middleware would record the answer,
    which holds the secret on create and rotate)."""
    request.state.audited = True
    await asyncio.to_thread(
        ctx.auth.audit.record,
        ctx.clock.now_ms(),
        caller.actor,
        action,
        f"webhook_source:{source_id}",
        client_ip(request),
        "ok",
        before,
        after,
    )
