"""The websocket edge: paths, subprotocol, plain HTTP page, security profiles 1 and 2."""

from __future__ import annotations

import datetime
import ssl
import urllib.request
from pathlib import Path

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.ocpp.server import charger_id_from_path
from tests.support.charger import SITE_PASSWORD, TestCharger, basic_auth


@pytest.mark.parametrize(("path", "expected"), [
    ("/ocpp/CP1", "CP1"), ("/CP1", "CP1"), ("/ocpp/CP%201", None),
    ("/ocpp/CP%2D1", "CP-1"), ("/ocpp/", None), ("/", None), ("/ocpp/" + "x" * 49, None),
    ("/steve/websocket/CentralSystemService/EVB-P1", "EVB-P1"), ("/ocpp/CP1?token=1", "CP1"),
])
def test_charger_id_is_the_last_path_segment_url_decoded_and_validated(path, expected):
    assert charger_id_from_path(path) == expected


async def test_plain_http_request_gets_a_page_saying_the_central_system_runs(gateway):
    url = f"http://127.0.0.1:{gateway.ports['ocpp']}/"
    import asyncio
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert "central system" in body and "websocket" in body


async def test_both_path_forms_connect_and_a_charger_without_subprotocol_is_accepted(gateway, runner):
    root = f"ws://127.0.0.1:{gateway.ports['ocpp']}"
    async with TestCharger(root, "PLAIN", subprotocols=[]) as cp:
        assert (await cp.boot())["status"] == "Pending"
        assert cp.ws.subprotocol is None
    async with TestCharger(runner.url, "NEGOTIATED") as cp:
        await cp.boot()
        assert cp.ws.subprotocol == "ocpp1.6"
    assert gateway.registry.get("NEGOTIATED").subprotocol == "ocpp1.6"


async def test_unknown_path_is_refused_before_the_upgrade(gateway):
    with pytest.raises(websockets.InvalidStatus) as err:
        await websockets.connect(f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp/", subprotocols=["ocpp1.6"])
    assert err.value.response.status_code == 404


async def test_basic_auth_key_is_checked_at_the_handshake(gateway, runner):
    await gateway.device_book.add_device("CP1", auth_key="s3cret-key-0123456789")
    for password in (None, "wrong"):
        with pytest.raises(websockets.InvalidStatus) as err:
            await TestCharger(runner.url, "CP1", password=password).connect()
        assert err.value.response.status_code == 401
    async with TestCharger(runner.url, "CP1", password="s3cret-key-0123456789") as cp:
        assert (await cp.boot())["status"] == "Accepted"
    refused = [r for r in await gateway.history.general_log("CP1") if r["message_type"] == "ConnectionRefused"]
    assert len(refused) == 2


def _self_signed(tmp: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


async def test_ssl_serves_wss_with_the_configured_certificate(runner, tmp_path):
    cert, key = _self_signed(tmp_path)
    gw = await runner.start(ocpp={"ssl_enabled": True, "ssl_certfile": cert, "ssl_keyfile": key})
    context = ssl.create_default_context(cafile=cert)
    async with websockets.connect(f"wss://localhost:{gw.ports['ocpp']}/ocpp/TLS1", ssl=context,
                                  subprotocols=["ocpp1.6"],
                                  additional_headers=basic_auth("TLS1", SITE_PASSWORD)) as ws:
        await ws.send('[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
        assert '"currentTime"' in await ws.recv()
