"""`/api/v1/confirm`: how often the hub's confirmation confirmed edge onsets, per detector and device.

Served by the process that runs the confirmation job (role `all`, with `confirm.enabled`); elsewhere a
503 says so (a worker's `/metrics` has the same counts). `limit` bounds the devices listed (most
onsets first).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from hub.api.auth import require
from hub.api.deps import Ctx
from hub.confirm.jobs import VERDICTS, rate

router = APIRouter(prefix="/api/v1", tags=["confirm"])


def _row(counts: Counter[str]) -> dict[str, Any]:
    return {v: counts[v] for v in VERDICTS} | {"confirmation_rate": rate(counts)}


@router.get("/confirm", dependencies=[require("alerts:read")])
async def confirmation(ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Verdict counts and the confirmed share of judged (confirmed + dismissed) onsets."""
    job = ctx.confirm
    if job is None:
        raise HTTPException(503, "this hub process runs no confirmation (needs confirm.enabled and role all)")
    detectors: dict[str, Counter[str]] = {}
    for (detector, verdict), n in job.stats.by_detector.items():
        detectors.setdefault(detector, Counter())[verdict] = n
    devices = sorted(job.stats.by_device.items(), key=lambda kv: -sum(kv[1].values()))[:limit]
    return {
        "detectors": [{"detector": d} | _row(c) for d, c in sorted(detectors.items())],
        "devices": [{"agent": a, "device": dev} | _row(c) for (a, dev), c in devices],
        "queued": job.queued,
        "dropped": job.stats.dropped,
    }
