"""The dashboard's Alerts and Incidents, in a real browser (Debian's chromium through Playwright) against a
real hub: alerts posted Alertmanager-style show as rows (firing first, critical first, text escaped), Ack
and Resolve change them through the API, and the incidents they opened are listed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from shared.model import Batch, BatchClass, LogRecord
from tests.support.outpost import HubHandle, push_batches, start_hub, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"  # Debian's (Makefile APT_PACKAGES); never a downloaded browser build
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Text a device could put in a label: must show as text, never run.
HOSTILE = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _post_alerts(hub: HubHandle, alerts: list[dict[str, Any]]) -> None:
    r = httpx.post(
        hub.api_url + "/api/v1/alerts", json=alerts, headers={"Authorization": f"Bearer {hub.token}"}
    )
    assert r.status_code < 300, r.text


def _signed_in(browser: Browser, hub: HubHandle) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(15_000)
    page.goto(hub.api_url + "/")
    page.click("#login summary")  # the API-token form, behind the password one
    page.fill("#token", hub.token)
    page.click("#login-form button[type=submit]")
    return page


def _rows(page: Page) -> list[list[str]]:
    """Each alerts row's cells as text."""
    return [
        [td.inner_text().strip() for td in tr.query_selector_all("td")]
        for tr in page.query_selector_all("#alerts tbody tr")
    ]


def _open_alert(hub: HubHandle, name: str) -> dict[str, Any]:
    body = hub.get("/api/v1/alerts", status=["firing", "acknowledged", "suppressed"], limit=100)
    found = [a for a in body["alerts"] if a["labels"]["alertname"] == name]
    assert len(found) == 1, body
    return found[0]


def test_alerts_show_firing_critical_first_and_ack_and_resolve_change_them(
    hub: HubHandle, browser: Browser, tmp_path: Path
) -> None:
    # the warning is posted first: the table still puts the critical one on top
    _post_alerts(
        hub,
        [{"labels": {"alertname": "DiskFull", "device": "srv2", "severity": "warning"},
          "annotations": {"summary": "/var at 93 %"}}],
    )  # fmt: skip
    _post_alerts(
        hub,
        [{"labels": {"alertname": "LinkDown", "device": "sw1", "severity": "critical", "ifIndex": "7"},
          "annotations": {"summary": HOSTILE}}],
    )  # fmt: skip
    page = _signed_in(browser, hub)
    expect(page.locator("#alerts tbody tr")).to_have_count(2)

    rows = _rows(page)
    assert [r[:5] for r in rows] == [
        ["critical", "LinkDown\nifIndex=7", "sw1", HOSTILE, "firing"],  # labels beyond name and device below
        ["warning", "DiskFull", "srv2", "/var at 93 %", "firing"],
    ]
    assert all(r[5].endswith("s ago") for r in rows), rows
    assert [r[6] for r in rows] == ["1", "1"]
    assert page.locator("#alerts tbody td.actions button").all_inner_texts() == ["Ack", "Resolve"] * 2
    assert page.evaluate("window.__pwned") is None  # the summary was text, not markup
    expect(page.locator("#alerts-state")).to_have_text("2 firing · 2 open")

    incidents = hub.get("/api/v1/incidents", limit=50)["incidents"]
    assert len(incidents) == 2, incidents  # grouped by device: one each
    inc_rows = page.locator("#incidents tbody tr")
    expect(inc_rows).to_have_count(2)
    shown = sorted(inc_rows.nth(i).locator("td").first.inner_text() for i in range(2))
    assert shown == sorted(i["title"] for i in incidents)

    page.locator("#alerts tbody tr", has_text="LinkDown").get_by_role("button", name="Ack").click()
    # acknowledged sorts after firing: DiskFull moves to the top
    expect(page.locator("#alerts tbody tr").first.locator("td").nth(1)).to_have_text("DiskFull")
    link_row = page.locator("#alerts tbody tr", has_text="LinkDown")
    expect(link_row.locator("td").nth(4)).to_have_text("acknowledged")
    expect(link_row.get_by_role("button", name="Unack")).to_have_count(1)
    assert _open_alert(hub, "LinkDown")["status"] == "acknowledged"
    assert _open_alert(hub, "DiskFull")["status"] == "firing"
    expect(page.locator("#alerts-state")).to_have_text("1 firing · 2 open")
    page.screenshot(path=str(tmp_path / "dashboard-acked.png"), full_page=True)

    page.locator("#alerts tbody tr", has_text="DiskFull").get_by_role("button", name="Resolve").click()
    expect(page.locator("#alerts tbody tr")).to_have_count(1)
    expect(page.locator("#alerts tbody tr").first.locator("td").nth(1)).to_have_text("LinkDownifIndex=7")
    resolved = hub.get("/api/v1/alerts", status="resolved", limit=100)["alerts"]
    assert [a["labels"]["alertname"] for a in resolved] == ["DiskFull"]


def test_with_no_alerts_the_tables_say_so_and_a_rejected_token_signs_out(
    hub: HubHandle, browser: Browser
) -> None:
    page = _signed_in(browser, hub)
    expect(page.locator("#alerts-empty")).to_be_visible()
    expect(page.locator("#incidents-empty")).to_be_visible()
    expect(page.locator("#alerts-state")).to_have_text("0 firing · 0 open")
    expect(page.locator("#status")).to_contain_text("agents · updated")
    # a rejected token signs out instead of polling forever
    wait_for(lambda: page.locator("#main").is_visible(), what="dashboard shown")
    page.evaluate("sessionStorage.setItem('outpost-token', 'wrong')")
    page.reload()
    expect(page.locator("#status")).to_have_text("token rejected")
    expect(page.locator("#login")).to_be_visible()


def test_a_user_signs_in_with_a_password_stays_signed_in_past_the_token_life_and_signs_out(
    tmp_path: Path, browser: Browser
) -> None:
    hub = start_hub(tmp_path, extra={"auth": {"access_ttl_s": 10}})
    try:
        r = httpx.post(
            hub.api_url + "/api/v1/users",
            json={"username": "noc", "password": "night-shift-7", "role": "operator"},
            headers={"Authorization": f"Bearer {hub.token}"},
        )
        assert r.status_code == 201, r.text
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(hub.api_url + "/")
        page.fill("#username", "noc")
        page.fill("#password", "wrong")
        page.click("#password-form button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("wrong username or password")
        page.fill("#password", "night-shift-7")
        page.click("#password-form button[type=submit]")
        expect(page.locator("#who")).to_have_text("noc (operator)")
        first = page.evaluate("sessionStorage.getItem('outpost-token')")
        # Past the 10 s access token: renewed at 7.5 s, so the tables keep updating and the stream stays up.
        wait_for(
            lambda: page.evaluate("sessionStorage.getItem('outpost-token')") != first,
            timeout=15,
            what="access token renewed",
        )
        page.wait_for_timeout(4_000)  # the first token has now expired
        expect(page.locator("#main")).to_be_visible()
        expect(page.locator("#status")).to_contain_text("agents · updated")
        _post_alerts(hub, [{"labels": {"alertname": "AfterRenewal", "severity": "warning"}}])
        expect(page.locator("#alerts tbody")).to_contain_text("AfterRenewal")  # over the stream or its poll
        renewed = page.evaluate("sessionStorage.getItem('outpost-refresh')")
        page.click("#sign-out")
        expect(page.locator("#status")).to_have_text("signed out")
        assert page.evaluate("sessionStorage.length") == 0
        # the session ended at the hub: its refresh token is spent
        r = httpx.post(hub.api_url + "/api/v1/auth/refresh", json={"refresh_token": renewed})
        assert r.status_code == 401
    finally:
        hub.stop()


def test_log_lines_show_newest_first_as_text_and_the_search_narrows_them(
    hub: HubHandle, browser: Browser
) -> None:
    now = int(time.time() * 1000)
    lines = [
        ("Interface Ethernet1 changed state to down", 3, "sw-lab"),
        ("Accepted publickey for noc from 10.0.0.9 port 50022 ssh2", 6, "jump1"),
        (HOSTILE, 4, "sw-lab"),
    ]
    records = tuple(
        LogRecord(now - 60_000 + i * 1000, now, text, severity=sev, app="demo", device=device)
        for i, (text, sev, device) in enumerate(lines)
    )
    results = push_batches(hub, [Batch(1, 1, logs=records, batch_class=BatchClass.LOGS)], "local/dash-logs")
    assert not results[0].error_message
    page = _signed_in(browser, hub)
    logs = page.locator("#logs tbody tr")
    expect(logs).to_have_count(3)
    assert logs.nth(0).inner_text().split("\t")[1:4] == ["warning", "sw-lab", "demo"]  # newest first
    expect(logs.nth(0).locator("td").nth(4)).to_have_text(HOSTILE)  # shown as text, never run
    assert page.evaluate("window.__pwned") is None
    page.fill("#logs-q", "ethernet1 AND down")
    expect(logs).to_have_count(1)
    expect(logs.nth(0)).to_contain_text("changed state to down")
    page.fill("#logs-q", "")
    page.select_option("#logs-severity", "err")
    expect(logs).to_have_count(1)
    page.fill("#logs-q", '"unclosed')
    expect(page.locator("#logs-state")).to_have_text("search not understood")
