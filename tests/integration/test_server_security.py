"""The websocket edge refuses what is not a charger: bad ids, wrong or guessed passwords, a
connection that would replace an authenticated one, a client certificate of another charger.

OCPP 1.6 security whitepaper: profile 1 (HTTP Basic, username = charge point identity), profile 2
(TLS with a server certificate), profile 3 (TLS with client certificates).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import os
import ssl
import stat
from pathlib import Path

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.model.credentials import check_password, stored_key
from gateway.model.login_throttle import LoginThrottle
from gateway.operator import actions as ops
from gateway.operator.token import charger_password_path
from gateway.simulator.profile import KeySpec, load_profile
from tests.compat.harness import Bench
from tests.conftest import wait_until
from tests.support.charger import TestCharger


@pytest.mark.parametrize("segment", [
    "..%2F..%2Fetc%2Fpasswd", "CP%2F1", "CP%001", "CP%0A1", "CP%7F", "CP%201", "x" * 49, "%C3%A9t%C3%A9",
    "..",
])
async def test_a_bad_charger_id_is_refused_with_400_before_the_upgrade(gateway, segment, caplog):
    caplog.set_level(logging.WARNING, "gateway.ocpp.server")
    with pytest.raises(websockets.InvalidStatus) as err:
        await websockets.connect(f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp/{segment}",
                                 subprotocols=["ocpp1.6"])
    assert err.value.response.status_code == 400
    assert "Invalid charger identifier" in err.value.response.body.decode()
    assert any("refused connection" in r.getMessage() for r in caplog.records)
    assert len(gateway.registry.stations) == 0


async def test_a_48_character_printable_id_is_welcome(gateway, runner):
    charger_id = "Site-A_CP.1(x)~" + "y" * 33
    assert len(charger_id) == 48
    async with TestCharger(runner.url, charger_id) as cp:
        await cp.boot()
    assert gateway.registry.get(charger_id) is not None


# --- security profile 1 ----------------------------------------------------------------------
async def refused_status(runner, charger_id: str, password: str | bytes | None) -> int:
    """The HTTP status of a handshake that is expected to be refused."""
    with pytest.raises(websockets.InvalidStatus) as err:
        await TestCharger(runner.url, charger_id, password=password).connect()
    return err.value.response.status_code


async def test_by_default_a_charger_needs_the_site_password_made_on_first_start(runner):
    gw = await runner.start(ocpp={"default_password": ""})
    path = charger_password_path(gw.settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    site_password = path.read_text().strip()
    assert await refused_status(runner, "CP1", None) == 401
    async with TestCharger(runner.url, "CP1", password=site_password) as cp:
        assert (await cp.boot())["status"] == "Pending"
    await gw.history.flush_log()
    texts = [r["message"] for r in await gw.history.general_log()]
    assert not [t for t in texts if site_password in t]


async def test_without_require_password_a_charger_without_a_key_may_connect_bare(runner):
    await runner.start(ocpp={"require_password": False, "default_password": ""})
    async with TestCharger(runner.url, "CP1", password=None) as cp:
        assert (await cp.boot())["status"] == "Pending"


async def test_a_connection_without_credentials_never_replaces_an_authenticated_one(runner):
    gw = await runner.start(ocpp={"require_password": False})
    await gw.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as real:  # sends the site password
        await real.boot()
        assert gw.connections.sessions["CP1"].authenticated
        assert await refused_status(runner, "CP1", None) == 401
        assert "currentTime" in await real.call("Heartbeat", {})
        assert real.ws.close_code is None
    refused = await gw.history.general_log("CP1", message_type="ConnectionRefused")
    assert "authenticated connection" in refused[0]["message"]


async def test_an_own_key_is_required_and_the_site_password_no_longer_works(gateway, runner):
    await gateway.device_book.add_device("CP1", auth_key="own-key-0123456789")
    assert await refused_status(runner, "CP1", None) == 401  # the default: the site password
    async with TestCharger(runner.url, "CP1", password="own-key-0123456789") as cp:
        assert (await cp.boot())["status"] == "Accepted"


async def test_guessing_is_slowed_and_a_lockout_is_logged(runner):
    """2,000 wrong passwords at ~1,000/s were all checked and logged; now the attempts inside the
    growing delay get 429 before any check and write no row."""
    now = [1_800_000_000.0]
    gw = await runner.start(clock=lambda: now[0])
    await gw.device_book.add_device("CP1", auth_key="right-key-0123456789")
    for _ in range(4):  # three free failures, the fourth starts a 1 s delay
        assert await refused_status(runner, "CP1", "guess") == 401
    assert await refused_status(runner, "CP1", "guess") == 429
    assert await refused_status(runner, "CP1", "right-key-0123456789") == 429  # no check at all
    now[0] += 1.5
    assert await refused_status(runner, "CP1", "guess") == 401  # checked again, now 2 s
    for delay in (2, 4, 8, 16, 32):
        now[0] += delay + 0.5
        assert await refused_status(runner, "CP1", "guess") == 401
    await gw.history.flush_log()
    assert len(await gw.history.general_log("CP1", message_type="ConnectionRefused")) == 10
    [lockout] = await gw.history.general_log("CP1", message_type="LoginLockout")
    assert "10 failed logins" in lockout["message"]
    now[0] += 600
    async with TestCharger(runner.url, "CP1", password="right-key-0123456789") as cp:
        assert (await cp.boot())["status"] == "Accepted"


@pytest.mark.parametrize("attempts_per_s", [1000])
def test_the_throttle_bounds_guessing_on_a_fake_clock(attempts_per_s):
    """The bound the issue asks for, measured: attempts that reach the password check."""
    for keys in ("one id, one address", "many ids, one address", "one id, many addresses"):
        throttle = LoginThrottle()
        checked = 0
        for i in range(attempts_per_s * 300):  # five minutes at 1,000 attempts/s
            now = i / attempts_per_s
            charger_id = f"CP{i}" if keys == "many ids, one address" else "CP1"
            address = f"10.0.{i // 250 % 250}.{i % 250}" if keys == "one id, many addresses" else "10.0.0.1"
            if throttle.retry_after(charger_id, address, now) == 0:
                checked += 1
                throttle.failed(charger_id, address, now)
        # 3 free, then after 1, 2, 4, ... 128 s: 11 checks in 300 s, under 0.04 per second.
        assert checked <= 12, (keys, checked)


def test_a_stranger_guessing_does_not_lock_out_the_real_charger():
    throttle = LoginThrottle()
    throttle.succeeded("CP1", "10.0.0.5")
    for i in range(50):
        throttle.failed("CP1", "192.0.2.66", float(i))
    assert throttle.retry_after("CP1", "192.0.2.66", 50.0) > 0
    assert throttle.retry_after("CP1", "10.0.0.5", 50.0) == 0


# --- keys as stored --------------------------------------------------------------------------
def test_keys_are_stored_with_scrypt_in_text_and_whitepaper_hex_form():
    stored = stored_key("0011223344556677")
    assert stored.startswith("scrypt$16384$8$1$") and "0011223344556677" not in stored
    assert check_password(b"0011223344556677", stored).ok
    assert check_password(bytes.fromhex("0011223344556677"), stored).ok
    assert not check_password(b"0011223344556678", stored).ok
    assert len(stored_key("not-hex").split("$")[-1].split(",")) == 1


async def test_an_old_sha256_key_still_logs_in_and_is_stored_again_with_scrypt(gateway, runner):
    salt = "00112233"
    legacy = f"{salt}${hashlib.sha256(f'{salt}:old-style-key'.encode()).hexdigest()}"
    await gateway.device_book.add_device("CP1")
    await gateway.history.update_device("CP1", auth_key_hash=legacy)
    await gateway.device_book.reload_devices()
    async with TestCharger(runner.url, "CP1", password="old-style-key") as cp:
        assert (await cp.boot())["status"] == "Accepted"
    await wait_until(lambda: gateway.device_book.devices["CP1"]["auth_key_hash"].startswith("scrypt$"))
    async with TestCharger(runner.url, "CP1", password="old-style-key") as cp:
        assert (await cp.boot())["status"] == "Accepted"


async def test_a_whitepaper_charger_sends_the_hex_decoded_key_during_rotation_and_after(runner):
    """Issue 13 item 8: `config set CP AuthorizationKey 0011...` then the charger sends the bytes."""
    gw = await runner.start()
    await gw.device_book.add_device("WP1", auth_key="first-key-0123456789")
    profile = load_profile("generic")
    profile = dataclasses.replace(profile, quirks=dataclasses.replace(
        profile.quirks, authorization_key="AuthorizationKey", reconnect_on_authorization_key_change=True,
        authorization_key_hex_decoded=True), keys={**profile.keys, "AuthorizationKey": KeySpec("AuthorizationKey", "")})
    bench = Bench(runner, gw, profile, "WP1")
    sim = await bench.connect(password="first-key-0123456789")
    new_key = "00112233445566778899aabbccddeeff"
    answer = await ops.change_configuration(gw.actions, "WP1", "AuthorizationKey", new_key)
    assert answer["status"] == "Accepted"
    await sim.wait_for(lambda: sim.boot_count == 2 and sim.ready.is_set())
    assert not await bench.log_lines("ConnectionRefused")
    # The simulator goes away first: it reconnects at once when replaced, and would in turn replace
    # the test charger before its boot is answered (now after that boot's log lines are committed).
    await sim.stop()
    async with TestCharger(runner.url, "WP1", password=bytes.fromhex(new_key)) as cp:
        assert (await cp.boot())["status"] == "Accepted"
    async with TestCharger(runner.url, "WP1", password=new_key) as cp:  # the text works as well
        assert (await cp.boot())["status"] == "Accepted"


# --- security profile 3 ----------------------------------------------------------------------
class TestCa:
    """A certificate authority made for one test (cryptography), issuing server and charger certs."""

    __test__ = False

    def __init__(self, tmp: Path, name: str = "Test CA") -> None:
        self.tmp, self.key = tmp, ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = self._build(self.name, self.key.public_key(), ca=True)
        self.path = self._write(f"{name}.pem", self.cert)

    def _build(self, subject: x509.Name, public_key: object, ca: bool = False,
               san: list[x509.GeneralName] | None = None) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def _write(self, name: str, cert: x509.Certificate) -> str:
        path = self.tmp / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return str(path)

    def issue(self, common_name: str, san: list[x509.GeneralName] | None = None) -> tuple[str, str]:
        """(certificate file, key file) for `common_name`."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = self._build(subject, key.public_key(), san=san)
        key_path = self.tmp / f"{common_name}-{id(key)}.key"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return self._write(f"{common_name}-{id(key)}.pem", cert), str(key_path)


async def profile3_gateway(runner, tmp_path: Path) -> tuple[object, TestCa]:
    ca = TestCa(tmp_path)
    server_cert, server_key = ca.issue("localhost", [x509.DNSName("localhost")])
    gw = await runner.start(ocpp={"ssl_enabled": True, "ssl_certfile": server_cert, "ssl_keyfile": server_key,
                                  "ssl_cafile": ca.path, "require_client_certificate": True})
    return gw, ca


async def tls_connect(gw, ca: TestCa, charger_id: str, client: tuple[str, str] | None,
                      maximum: ssl.TLSVersion | None = None) -> websockets.ClientConnection:
    context = ssl.create_default_context(cafile=ca.path)
    if client is not None:
        context.load_cert_chain(*client)
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    ws = await websockets.connect(f"wss://localhost:{gw.ports['ocpp']}/ocpp/{charger_id}", ssl=context,
                                  subprotocols=["ocpp1.6"])
    await ws.send('[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
    await ws.recv()  # a refused client certificate shows here at the latest (TLS 1.3)
    return ws


async def test_profile3_a_charger_certificate_naming_the_id_is_let_in_without_a_password(runner, tmp_path):
    gw, ca = await profile3_gateway(runner, tmp_path)
    await gw.device_book.add_device("CP1")
    await gw.device_book.add_device("CP2")
    by_cn = ca.issue("CP1")
    by_san = ca.issue("device-7", [x509.DNSName("CP2")])
    for charger_id, client in (("CP1", by_cn), ("CP2", by_san)):
        ws = await tls_connect(gw, ca, charger_id, client)
        await ws.close()
        await wait_until(lambda c=charger_id: gw.registry.get(c).boot_status == "Accepted")


async def test_profile3_refuses_another_chargers_certificate_a_foreign_ca_and_no_certificate(runner, tmp_path):
    gw, ca = await profile3_gateway(runner, tmp_path)
    await gw.device_book.add_device("CP1")
    with pytest.raises(websockets.InvalidStatus) as err:
        await tls_connect(gw, ca, "CP1", ca.issue("CP9"))
    assert err.value.response.status_code == 403
    (tmp_path / "elsewhere").mkdir()
    stranger = TestCa(tmp_path / "elsewhere", "Stranger CA")
    for client in (stranger.issue("CP1"), None):
        with pytest.raises((OSError, websockets.exceptions.WebSocketException)):
            await tls_connect(gw, ca, "CP1", client)
    assert gw.registry.get("CP1").boot_status == ""
    refused = await gw.history.general_log("CP1", message_type="ConnectionRefused")
    assert "CP9" in refused[0]["message"]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_below_1_2_is_refused(runner, tmp_path):
    gw, ca = await profile3_gateway(runner, tmp_path)
    with pytest.raises((OSError, websockets.exceptions.WebSocketException)):
        await tls_connect(gw, ca, "CP1", ca.issue("CP1"), maximum=ssl.TLSVersion.TLSv1_1)


def test_chargers_sharing_an_address_are_not_held_back_by_one_with_a_wrong_key():
    """zappi and Smappee connect through their vendor's cloud: many chargers, few addresses."""
    throttle = LoginThrottle()
    for i in range(20):  # one misconfigured charger behind the cloud address keeps failing
        throttle.failed("BROKEN", "203.0.113.9", float(i * 30))
        throttle.succeeded(f"GOOD{i}", "203.0.113.9")  # its neighbours log in meanwhile
        assert throttle.retry_after(f"NEW{i}", "203.0.113.9", float(i * 30)) == 0
    assert throttle.retry_after("BROKEN", "203.0.113.9", 600.0) > 0
