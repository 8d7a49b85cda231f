"""What request handlers need from the running hub, attached to the app at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from hub.state import HubState
from hub.store.base import Store
from hub.telemetry import HubMetrics
from shared.clock import Clock


@dataclass(frozen=True, slots=True)
class HubContext:
    store: Store
    state: HubState
    metrics: HubMetrics
    clock: Clock


def get_context(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.ctx
    return ctx


Ctx = Annotated[HubContext, Depends(get_context)]
