"""The commissioning web pages in headless Chromium, as an integrator uses them (issue 16).

Log in, see a guest appear, add it, change the authorize policy and see a card refused, start a
remote transaction and watch the connector go Charging without a reload, set a site limit and
see the shares, export XLSX and read it back. The same run takes the screenshots in
docs/screenshots/ when GATEWAY_SCREENSHOTS names that folder (see docs/web-ui.md).
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from gateway.operator.token import read_admin_token
from gateway.simulator import Simulator
from tests.support.charger import SITE_PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
playwright_api = pytest.importorskip("playwright.async_api", reason="Playwright for Python is not installed "
                                     "(pip install '.[test]')")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="chromium is not installed (apt-get install chromium): browser tests skipped")
CHARGER = "GARAGE-01"
CARD = "CARD-0001"


@pytest.fixture
async def page(tmp_path):
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = await browser.new_context(viewport={"width": 1100, "height": 720}, accept_downloads=True)
        context.set_default_timeout(15000)
        try:
            yield await context.new_page()
        finally:
            await browser.close()


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GATEWAY_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_commissioning_a_charger_from_the_browser(runner, page, tmp_path):
    gw = await runner.start(registration={"guest_reconnect_interval_s": 10})
    base, folder = runner.admin_url, shots(tmp_path)
    sim = Simulator("generic", CHARGER, runner.url, SITE_PASSWORD, heartbeat=False)
    try:
        await page.goto(f"{base}/ui/devices")
        assert "/ui/login" in page.url
        await page.screenshot(path=folder / "login.png")
        await page.fill("input[name=token]", read_admin_token(gw.settings))
        await page.click("text=Log in")
        await page.wait_for_url(f"{base}/ui/devices")

        # A guest appears without a reload, with its boot data; Add gives it slot 1.
        await sim.start(wait="answer")
        await page.locator(f"#guests tr[data-charger='{CHARGER}']").wait_for()
        await page.screenshot(path=folder / "devices-guest.png")
        await page.locator(f"#guests tr[data-charger='{CHARGER}'] button:text('Add')").click()
        await page.locator(".flash.ok", has_text=f"added {CHARGER} in slot 1").wait_for()
        await sim.wait_for(lambda: sim.ready.is_set(), timeout=15)
        await page.locator(f"#devices tr[data-charger='{CHARGER}'] td.ok").wait_for()
        await page.screenshot(path=folder / "devices.png")

        # Only whitelisted cards: an unknown card is refused at once, no restart.
        await page.goto(f"{base}/ui/authorize")
        await page.select_option("#policy-form select[name=value]", "none_except_whitelist")
        await page.click("#policy-form button")
        await page.locator(".flash.ok", has_text="authorize.policy is now none_except_whitelist").wait_for()
        assert await sim.authorize("UNKNOWN-CARD") == "Invalid"
        await page.fill("input[name=id_tag] >> nth=0", CARD)
        await page.click("button:text('Add')")
        await page.locator("#tags", has_text=CARD).wait_for()
        await page.fill("form[action$='/tenants'] input[name=id_tag]", CARD)
        await page.fill("form[action$='/tenants'] input[name=tenant]", "Flat 3")
        await page.click("form[action$='/tenants'] button")
        await page.locator("#tenants", has_text="Flat 3").wait_for()
        await page.screenshot(path=folder / "authorize.png")

        # Remote start; the connector goes Charging on the open page (no reload).
        await page.goto(f"{base}/ui/devices/{CHARGER}")
        await page.select_option("#action-form select[name=action]", "RemoteStartTransaction")
        await page.fill("#action-form input[name=connector_id]", "1")
        await page.fill("#action-form input[name=id_tag]", CARD)
        await page.click("#action-form button")
        await page.locator(".flash.ok", has_text="RemoteStartTransaction: Accepted").wait_for()
        await page.evaluate("window.stillTheSamePage = true")
        await page.locator("#live-state", has_text="on").wait_for()
        await sim.plug_in(1)
        await page.locator("#connectors tr[data-connector='1'] td[data-field=status]", has_text="Charging").wait_for()
        assert await page.evaluate("window.stillTheSamePage === true")
        await page.screenshot(path=folder / "device.png", full_page=False)

        # A site limit is shared, and the page shows the session's share and what was sent.
        await page.goto(f"{base}/ui/site")
        await page.fill("input[name=power_kw]", "11")
        await page.click("button:text('Set limit')")
        await page.locator("#site-limit", has_text="11.0 kW").wait_for()
        await page.locator(f"#shares tr[data-connector='{CHARGER}/1']").wait_for()
        await page.locator(f"#shares tr[data-connector='{CHARGER}/1']", has_text="Accepted").wait_for()
        await page.screenshot(path=folder / "site.png")

        # The transaction ends; the XLSX export has it with real date cells.
        await sim.send_meter_values(1)  # its log lines are kept with the meter row
        await sim.stop_session(1)
        await page.goto(f"{base}/ui/transactions")
        await page.locator("#transactions", has_text=CARD).wait_for()
        await page.screenshot(path=folder / "transactions.png")
        async with page.expect_download() as download_info:
            await page.click("#export-xlsx")
        target = tmp_path / "transactions.xlsx"
        await (await download_info.value).save_as(target)
        rows = list(load_workbook(target).active.iter_rows(values_only=True))
        row = dict(zip(rows[0], rows[1], strict=True))
        assert len(rows) == 2 and row["identifier"] == CHARGER and row["id_tag"] == CARD
        assert isinstance(row["start_time"], datetime) and row["status"] == "stopped"

        await page.goto(f"{base}/ui/history?charger={CHARGER}")
        await page.locator("#log", has_text="StartTransactionRequest").wait_for()
        await page.locator("#log tr", has_text="MeterValuesRequest").first.wait_for()
        await page.locator("#log tr", has_text="MeterValuesConfirmation").first.wait_for()
        await page.screenshot(path=folder / "history.png")
        await page.goto(f"{base}/ui/")
        await page.screenshot(path=folder / "network.png")
    finally:
        await sim.stop()
