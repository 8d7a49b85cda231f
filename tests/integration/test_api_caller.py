"""The API's `Caller` dependency names who holds the key, on a real migrated database and real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from hub.api.auth import Caller, require
from hub.api.deps import HubContext
from hub.auth.config import AuthConfig
from hub.auth.service import AuthService
from hub.config import HubConfig
from hub.fleet.agents import Fleet
from hub.store.factory import build_store
from hub.telemetry import HubMetrics
from shared.clock import SystemClock
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration


async def test_a_route_under_require_gets_the_caller_and_a_bad_token_is_a_counted_401(
    tmp_path: Path,
) -> None:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    metrics = HubMetrics()
    auth = AuthService(engine, SystemClock(), AuthConfig(), metrics.registry)
    token = auth.keys.ensure_admin_key(1_800_000_000_000)
    store = build_store(HubConfig(data_dir=tmp_path).store, tmp_path)
    ctx = HubContext(store, Fleet(engine), auth, metrics, SystemClock())
    router = APIRouter(dependencies=[require("agents:read")])

    @router.get("/whoami")
    async def whoami(caller: Caller) -> dict[str, str]:
        return {"name": caller.name, "role": caller.role}

    app = FastAPI()
    app.include_router(router)
    app.state.ctx = ctx
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") as client:
            ok = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
            bad = await client.get("/whoami", headers={"Authorization": f"Bearer {token}x"})
            none = await client.get("/whoami")
    finally:
        ctx.queries.close()
        auth.close()
        engine.dispose()
    assert (ok.status_code, ok.json()) == (200, {"name": "admin", "role": "admin"})
    assert (bad.status_code, none.status_code) == (401, 401)
    assert metrics.registry.get_sample_value("outpost_hub_api_auth_failures_total") == 2
