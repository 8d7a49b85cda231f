"""The API docs work on an offline hub: every asset is served by the hub, and the schema needs the token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.outpost import HubHandle, start_hub

pytestmark = pytest.mark.integration

_URL = re.compile(r"""https?://[^\s"'<>)]+""")
_ASSET = re.compile(r"""(?:src|href)="([^"]+)\"""")
_CSS_URL = re.compile(r"""url\(([^)]*)\)|@import""")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubHandle]:
    h = start_hub(tmp_path_factory.mktemp("docs-hub"))
    try:
        yield h
    finally:
        h.stop()


def test_docs_page_and_its_script_name_no_url_outside_the_hub_and_every_asset_loads(hub: HubHandle) -> None:
    page = httpx.get(hub.api_url + "/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = _ASSET.findall(page.text)
    assert sorted(assets) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/init.js",
    ]
    kinds = {}
    for asset in assets:
        r = httpx.get(urljoin(hub.api_url, asset))
        assert r.status_code == 200, asset
        assert len(r.content) > 0, asset
        kinds[asset.rsplit(".", 1)[1]] = r.headers["content-type"].split(";")[0]
        if asset.endswith("init.js"):
            assert _URL.findall(r.text) == []
        if asset.endswith(".css"):  # what a stylesheet loads: inline data, nothing fetched from elsewhere
            loads = _CSS_URL.findall(r.text)
            assert loads and all(u.strip("'\"").startswith("data:") for u in loads), asset
    assert kinds == {"png": "image/png", "js": "text/javascript", "css": "text/css"}
    foreign = [u for u in _URL.findall(page.text) if not u.startswith("http://127.0.0.1")]
    assert foreign == []
    assert "SwaggerUIBundle" in httpx.get(hub.api_url + "/docs/assets/swagger-ui-bundle.js").text


def test_openapi_document_needs_the_token(hub: HubHandle) -> None:
    anonymous = httpx.get(hub.api_url + "/openapi.json")
    wrong = httpx.get(hub.api_url + "/openapi.json", headers={"Authorization": "Bearer nope"})
    good = httpx.get(hub.api_url + "/openapi.json", headers={"Authorization": f"Bearer {hub.token}"})
    assert (anonymous.status_code, wrong.status_code, good.status_code) == (401, 401, 200)
    doc = good.json()
    assert doc["info"]["title"] == "Outpost hub"
    assert "/api/v1/agents" in doc["paths"]
    assert "/openapi.json" not in doc["paths"] and "/docs" not in doc["paths"]


def test_cdn_pages_are_gone_and_the_docs_script_reads_the_dashboards_token(hub: HubHandle) -> None:
    assert httpx.get(hub.api_url + "/redoc").status_code == 404
    assert httpx.get(hub.api_url + "/docs/oauth2-redirect").status_code == 404
    init = httpx.get(hub.api_url + "/docs/init.js").text
    dashboard = httpx.get(hub.api_url + "/static/app.js").text
    assert 'sessionStorage.getItem("outpost-token")' in init
    assert 'sessionStorage.getItem("outpost-token")' in dashboard
    assert 'url: "/openapi.json"' in init and "Authorization" in init
