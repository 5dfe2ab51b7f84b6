"""The web pages without a browser: login, cookie, CSRF, every page renders, bad input (issue 16)."""

from __future__ import annotations

import re

import aiohttp
import pytest

from gateway.operator.token import read_admin_token
from tests.support.charger import TestCharger

PAGES = ("/ui/", "/ui/devices", "/ui/authorize", "/ui/history", "/ui/transactions", "/ui/site")


async def login(runner, gateway) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(runner.admin_url, cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1
    async with http.post("/ui/login", data={"token": read_admin_token(gateway.settings), "next": "/ui/"}) as r:
        assert r.status == 200 and r.url.path == "/ui/"
    return http


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def test_pages_need_a_login_with_the_admin_token(gateway, runner):
    async with aiohttp.ClientSession(runner.admin_url) as http:
        async with http.get("/ui/devices", allow_redirects=False, headers={"Accept": "text/html"}) as r:
            assert r.status == 302 and r.headers["Location"].startswith("/ui/login")
        async with http.get("/ui/part/chargers", allow_redirects=False) as r:
            assert r.status == 401  # a page's script gets no login page in place of its part
        async with http.post("/ui/login", data={"token": "wrong"}) as r:
            assert "not the admin token" in await r.text()
        async with http.post("/ui/login", data={"token": read_admin_token(gateway.settings)},
                             allow_redirects=False) as r:
            cookie = r.headers["Set-Cookie"]
            assert r.status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_every_page_renders(gateway, runner):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        http = await login(runner, gateway)
        async with http:
            for path in (*PAGES, "/ui/devices/CP1", "/ui/part/chargers", "/ui/part/log", "/ui/part/site"):
                async with http.get(path) as r:
                    assert r.status == 200, path
                    assert "Traceback" not in await r.text()
            async with http.get("/ui/devices/CP1") as r:
                html = await r.text()
            assert "TestVendor" in html and "Available" in html and "Modbus registers" in html


async def test_a_form_without_the_csrf_token_changes_nothing(gateway, runner):
    http = await login(runner, gateway)
    async with http:
        async with http.post("/ui/settings", data={"key": "authorize.policy", "value": "none"}) as r:
            assert r.status == 403
        async with http.post("/ui/settings", data={"key": "authorize.policy", "value": "none", "csrf": "x"}) as r:
            assert r.status == 403
    assert gateway.settings.authorize.policy == "all"


@pytest.mark.parametrize(("path", "form", "says"), [
    ("/ui/settings", {"key": "authorize.policy", "value": "maybe"}, "must be one of"),
    ("/ui/settings", {"key": "ocpp.port", "value": "1"}, "not a setting that changes"),
    ("/ui/devices/add", {"charger_id": "has space"}, "not a charger id"),
    ("/ui/devices/add", {"charger_id": "CP1", "registration": "Maybe"}, "registration must be one of"),
    ("/ui/tags", {"id_tag": "X" * 21}, "20 characters"),
    ("/ui/tags", {"id_tag": "T1", "expiry": "12/01/2026"}, "expiry must be an ISO date"),
    ("/ui/site", {"power_kw": "lots"}, "must be a number"),
])
async def test_bad_form_input_is_one_line_on_the_page_and_changes_nothing(path, form, says, gateway, runner):
    http = await login(runner, gateway)
    async with http:
        async with http.get("/ui/") as r:
            csrf = csrf_of(await r.text())
        async with http.post(path, data={**form, "csrf": csrf, "back": "/ui/"}) as r:
            html = await r.text()
    assert r.status == 200 and says in html
    assert gateway.settings.authorize.policy == "all" and gateway.device_book.devices == {} and gateway.device_book.tags == {}


async def test_a_login_cannot_redirect_to_another_site(gateway, runner):
    async with aiohttp.ClientSession(runner.admin_url) as http:
        async with http.post("/ui/login", data={"token": read_admin_token(gateway.settings),
                                                "next": "//evil.example/"}, allow_redirects=False) as r:
            assert r.headers["Location"] == "/ui/"


async def test_the_event_stream_names_what_changed(gateway, runner):
    http = await login(runner, gateway)
    async with http, http.get("/ui/events") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        async with TestCharger(runner.url, "G1") as cp:
            await cp.boot()
            async for line in stream.content:
                if line.startswith(b"data:") and b"charger:G1" in line:
                    break


async def test_an_open_event_stream_does_not_hold_up_a_stop(gateway, runner):
    import asyncio
    http = await login(runner, gateway)
    async with http, http.get("/ui/events") as stream:
        await stream.content.readline()  # the stream is open
        await asyncio.wait_for(runner.stop(), 10)


async def test_guessing_the_token_is_slowed_down(gateway, runner):
    async with aiohttp.ClientSession(runner.admin_url) as http:
        for _ in range(5):
            async with http.post("/ui/login", data={"token": "guess"}) as r:
                assert "not the admin token" in await r.text()
        async with http.post("/ui/login", data={"token": read_admin_token(gateway.settings)},
                             allow_redirects=False) as r:
            assert r.status == 200 and "Too many failed attempts" in await r.text()
    failed = await gateway.history.general_log(message_type="WebLogin")
    assert len(failed) == 5 and all(row["level"] == "warning" for row in failed)


async def test_a_configured_password_also_logs_in(runner):
    gateway = await runner.start(admin={"password": "correct horse battery"})
    async with aiohttp.ClientSession(runner.admin_url) as http:
        async with http.post("/ui/login", data={"token": "correct horse battery"}, allow_redirects=False) as r:
            assert r.status == 303 and "gw_session" in r.headers["Set-Cookie"]
        async with http.post("/ui/login", data={"token": "correct horse"}, allow_redirects=False) as r:
            assert r.status == 200
    assert gateway.settings.admin.password


def test_a_short_password_is_refused(capsys):
    from gateway.main import main
    assert main(["--set", "admin.password=short", "devices", "list"]) == 1
    assert "admin.password must be at least 12 characters" in capsys.readouterr().err


async def test_only_the_login_and_its_files_are_public(gateway, runner):
    from gateway.operator.web import PUBLIC_PATHS
    async with aiohttp.ClientSession(runner.admin_url) as http:
        for path in PUBLIC_PATHS:
            async with http.get(path, allow_redirects=False) as r:
                assert r.status in (200, 302), path
        for path in ("/ui/devices", "/ui/export/transactions", "/ui/part/chargers", "/ui/events"):
            async with http.get(path, allow_redirects=False) as r:
                assert r.status in (302, 401), path
                assert "GARAGE" not in await r.text()


async def test_smart_charging_properties_of_a_connector_from_the_device_page(gateway, runner):
    await gateway.device_book.add_device("CP1")
    http = await login(runner, gateway)
    async with http:
        async with http.get("/ui/devices/CP1") as r:
            csrf = csrf_of(await r.text())
        form = {"csrf": csrf, "back": "/ui/devices/CP1", "connector_id": "1", "unit": "A", "limit": "16",
                "kind": "Absolute", "purpose": "TxDefaultProfile", "profile_id": "7", "stack_level": "1"}
        async with http.post("/ui/devices/CP1/smart", data=form) as r:
            assert "properties of connector 1 saved" in await r.text()
    saved = gateway.charging.settings_for("CP1", 1)
    assert (saved.limit, saved.purpose, saved.enabled) == (16.0, "TxDefaultProfile", False)


async def test_a_guest_that_does_not_belong_is_forgotten_from_the_device_manager(gateway, runner):
    async with TestCharger(runner.url, "STRANGER") as cp:
        await cp.boot()
    http = await login(runner, gateway)
    async with http:
        async with http.get("/ui/devices") as r:
            html = await r.text()
        assert "STRANGER" in html and 'action="/ui/devices/forget"' in html
        async with http.post("/ui/devices/forget", data={"csrf": csrf_of(html), "back": "/ui/devices",
                                                         "charger_id": "STRANGER"}) as r:
            assert "forgot STRANGER" in await r.text()
    assert gateway.registry.get("STRANGER") is None
