"""The admin API refuses what is not the operator: no token, a foreign page, a rebound host name.

Issue "secure by default": a browser page on the gateway host unlocked a connector with a
cross-origin POST; Host was not checked (DNS rebinding); a non-ASCII token header gave a 500.
"""

from __future__ import annotations

import asyncio
import os
import stat

import aiohttp
import pytest

from gateway.operator.token import token_path
from tests.conftest import GatewayRunner


async def raw_request(runner: GatewayRunner, head: bytes) -> int:
    """Send one raw HTTP/1.1 request (headers as bytes, as a hostile client may) and return the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", runner.gateway.ports["admin"])
    try:
        writer.write(head + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_the_token_is_made_on_first_start_and_kept_private(gateway, runner):
    path = token_path(gateway.settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32


async def test_every_route_needs_the_token_read_only_ones_too(gateway, runner):
    async with aiohttp.ClientSession() as http:
        for method, path in (("GET", "/api/status"), ("GET", "/api/chargers"),
                             ("GET", "/api/history/transactions"), ("POST", "/api/devices")):
            async with http.request(method, runner.admin_url + path, json={"charger_id": "X"}) as resp:
                assert resp.status == 401, path
        async with http.get(runner.admin_url + "/api/status", headers=runner.admin_headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["security"] == {"tls": False, "require_password": True,
                                                       "require_client_certificate": False}
    assert "X" not in gateway.device_book.devices


async def test_the_scheme_name_is_case_insensitive(gateway, runner):
    token = runner.admin_headers["Authorization"].split(" ", 1)[1]
    async with aiohttp.ClientSession() as http:
        for scheme in ("bearer", "BEARER", "Bearer"):
            async with http.get(runner.admin_url + "/api/status",
                                headers={"Authorization": f"{scheme} {token}"}) as resp:
                assert resp.status == 200, scheme


async def test_a_cross_origin_post_is_refused_even_with_the_token(gateway, runner):
    """A foreign page cannot ride on a browser that holds the token (or a future session cookie)."""
    headers = {**runner.admin_headers, "Origin": "http://evil.example"}
    async with aiohttp.ClientSession() as http, http.post(
            runner.admin_url + "/api/devices", json={"charger_id": "EVIL"}, headers=headers) as resp:
        assert resp.status == 403
    assert "EVIL" not in gateway.device_book.devices
    same = {**runner.admin_headers, "Origin": runner.admin_url}
    async with aiohttp.ClientSession() as http, http.post(
            runner.admin_url + "/api/devices", json={"charger_id": "MINE"}, headers=same) as resp:
        assert resp.status == 201


async def test_a_rebound_host_name_is_refused(gateway, runner):
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends it as Host."""
    port = gateway.ports["admin"]
    headers = {**runner.admin_headers, "Host": f"evil.example:{port}"}
    async with aiohttp.ClientSession() as http, http.get(
            runner.admin_url + "/api/status", headers=headers) as resp:
        assert resp.status == 421
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        async with aiohttp.ClientSession() as http, http.get(
                runner.admin_url + "/api/status", headers={**runner.admin_headers, "Host": host}) as resp:
            assert resp.status == 200, host


async def test_a_configured_host_name_is_answered(runner):
    gw = await runner.start(admin={"allowed_hosts": ["Gateway.Site.Local"]})
    headers = {**runner.admin_headers, "Host": f"gateway.site.local:{gw.ports['admin']}"}
    async with aiohttp.ClientSession() as http, http.get(runner.admin_url + "/api/status",
                                                         headers=headers) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("authorization", [
    "Bearer \xe9\xe8\xff".encode("latin-1"), "Bearer \u20ac".encode(), b"Bearer", b"Bearer ",
    b"Basic dXNlcjpwYXNz", b"\xff\xfe", b"Bearer a b c",
])
async def test_malformed_authorization_headers_get_401_never_500(gateway, runner, authorization):
    port = gateway.ports["admin"]
    status = await raw_request(runner, b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                       b"Authorization: " % port + authorization)
    assert status in (400, 401)


async def test_a_malformed_host_or_origin_is_refused_not_an_error(gateway, runner):
    token = runner.admin_headers["Authorization"].encode()
    for extra in (b"Host: [::1\r\n", b"Host: 127.0.0.1\r\nOrigin: http://[::1", b"Host: \xff\xfe"):
        status = await raw_request(runner, b"GET /api/status HTTP/1.1\r\nAuthorization: " + token +
                                   b"\r\n" + extra.rstrip(b"\r\n"))
        assert status in (400, 403, 421), extra


async def test_the_cli_without_the_token_says_where_it_looked(gateway, runner, capsys, tmp_path):
    from gateway.main import main
    elsewhere = tmp_path / "other" / "gateway.sqlite"
    code = await asyncio.to_thread(main, ["--admin-url", runner.admin_url, "--set",
                                          f"database.path={elsewhere}", "devices", "list"])
    err = capsys.readouterr().err
    assert code == 1 and "401" in err and str(elsewhere.parent / "admin-token") in err
