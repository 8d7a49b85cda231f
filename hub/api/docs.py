"""The API's interactive docs, served from the hub itself: Swagger UI from the `swagger-ui-bundle`
package (FastAPI's default pages load it from a CDN, so they are blank on an offline hub).

The page and its assets are static and public; the OpenAPI document they render needs the API token
(it maps every endpoint and parameter), which the page takes from the dashboard's tab storage or asks
for once. ReDoc ships no offline bundle on PyPI, so it is not served.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed

from hub.api.auth import require

ASSETS = "/docs/assets"

_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Outpost hub API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

# The dashboard keeps the token in this tab's sessionStorage under the same key (dashboard/static/app.js).
_INIT = """// Renders /openapi.json, which needs the API token: the dashboard's, or asked for once.
let token = sessionStorage.getItem("outpost-token") || "";
if (!token) {
  token = (window.prompt("Outpost API token (printed by the hub on first start)") || "").trim();
  if (token) sessionStorage.setItem("outpost-token", token);
}
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  requestInterceptor: (req) => {
    if (token) req.headers.Authorization = "Bearer " + token;
    return req;
  },
});
"""


def add_docs(app: FastAPI) -> None:
    """Serves `/docs` (Swagger UI, local assets) and `/openapi.json` (token required).

    `app` must be created with `docs_url=None, redoc_url=None, openapi_url=None`.
    """

    @app.get("/openapi.json", include_in_schema=False, dependencies=[require("docs:read")])
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE)

    @app.get("/docs/init.js", include_in_schema=False)
    async def init_js() -> Response:
        return Response(_INIT, media_type="text/javascript")

    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
