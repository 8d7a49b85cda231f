"""The dashboard gets alerts (and incidents) over /ws instead of polling, in a real browser (Debian's chromium
through Playwright) against a real hub process: the token goes in the first frame, never in the URL,
and an alert posted after the page loaded shows without a reload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Browser, WebSocket, expect

from tests.e2e.test_dashboard import _post_alerts, browser
from tests.support.outpost import HubHandle

__all__ = ["browser"]

# A second hub and browser (~20 s) on top of tests/e2e/test_dashboard.py: run by `make soak`.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_dashboard_streams_alerts_with_the_token_in_the_first_frame(
    hub: HubHandle, browser: Browser
) -> None:
    sockets: list[WebSocket] = []
    sent: list[Any] = []

    def watch(ws: WebSocket) -> None:
        sockets.append(ws)
        ws.on("framesent", lambda frame: sent.append(frame))

    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.on("websocket", watch)
    page.goto(hub.api_url + "/")
    page.click("#login summary")  # the API-token form, behind the password one
    page.fill("#token", hub.token)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#alerts-empty")).to_be_visible()
    for _ in range(100):  # Playwright delivers events only while it is called: wait through it
        if len(sent) >= 2:
            break
        page.wait_for_timeout(100)
    assert [s.url for s in sockets] == [f"ws://127.0.0.1:{hub.api_port}/ws"]  # no token in it
    first, second = (json.loads(f) for f in sent[:2])
    assert first == {"type": "auth", "token": hub.token}
    assert second == {"type": "subscribe", "topics": ["alerts", "incidents"]}

    _post_alerts(hub, [{"labels": {"alertname": "FanFailed", "device": "srv9", "severity": "critical"}}])
    # No polling any more: only the stream can bring it in.
    expect(page.locator("#alerts tbody tr", has_text="FanFailed")).to_have_count(1, timeout=5000)
    # The incident it opened, shown under the table: no model configured, so no explanation yet.
    page.locator("#incidents tbody tr", has_text="srv9").click()
    expect(page.locator("#incident-title")).to_contain_text("device=srv9")
    expect(page.locator("#incident-enrichment .hint")).to_have_text(
        "No explanation yet: it appears here when the model answers."
    )
