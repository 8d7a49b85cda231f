"""Request count and latency of the hub's HTTP API, by route template, method and status.

Labelled by the route *template* the router matched (`/api/v1/series/{key}`), never the raw path, so
the number of series stays bounded whatever clients ask for; requests no route matched share one label.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiRequestMetrics:
    """The two series; made once per hub registry and handed to the middleware.

    `observe` keeps each label set's bound children: `.labels()` hashes and takes a lock on every call,
    twice per request otherwise. The map holds no more entries than the registry already has series.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "outpost_hub_api_requests", "API requests answered", labels, registry=registry
        )
        self.seconds = Histogram(
            "outpost_hub_api_request_seconds",
            "API request latency until the response ended",
            labels,
            buckets=_BUCKETS,
            registry=registry,
        )
        self._bound: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: str, seconds: float) -> None:
        """Counts one answered request and its latency."""
        labels = (route, method, status)
        bound = self._bound.get(labels)
        if bound is None:
            bound = self._bound[labels] = (self.requests.labels(*labels), self.seconds.labels(*labels))
        bound[0].inc()
        bound[1].observe(seconds)


def route_template(scope: Scope, root_path: str) -> str:
    """The path template of the route that answered: the route the router put in `scope`, or for a mount
    (whose prefix the router appends to `root_path`; not every FastAPI version sets its route) the
    prefix plus `{path}`; `root_path` is the scope's before routing."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(route, Mount) and isinstance(path, str):
        return path.rstrip("/") + "/{path}"
    if isinstance(path, str) and path:
        return path
    mounted = scope.get("root_path", "")
    if isinstance(mounted, str) and len(mounted) > len(root_path) and mounted.startswith(root_path):
        return mounted[len(root_path) :] + "/{path}"
    return UNMATCHED


class RequestMetricsMiddleware:
    """Pure ASGI middleware (no per-request task or body buffering, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, metrics: ApiRequestMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        root_path = scope.get("root_path", "")
        began = time.perf_counter()
        try:
            await self._app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - began
            self._metrics.observe(route_template(scope, root_path), scope["method"], str(status), elapsed)
