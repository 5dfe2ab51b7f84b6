"""Meter values are bounded per message and per charger, and a re-sent MeterValues is stored once
(issue 12: a 250 KB sampled value was stored whole; a MeterValues committed just before a kill
and re-sent by the charger, which never got its answer, was stored twice).

Over the real websocket server with the test charger. Guests are accepted in the size tests: the
worst case on purpose (a peer nobody added reaches the checks).
"""

from __future__ import annotations

import json

import pytest

from gateway.main import Gateway
from tests.conftest import GatewayRunner
from tests.support.charger import CallErrorReply, TestCharger

T0 = "2026-11-20T08:00:00Z"
GUESTS_ACCEPTED = {"guest_response": "Accepted"}


async def start(cp: TestCharger, timestamp: str = T0) -> int:
    await cp.boot()
    answer = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                "timestamp": timestamp})
    return answer["transactionId"]


def meter_values(tx_id: int | None, *sampled: dict, timestamp: str = T0) -> dict:
    payload = {"connectorId": 1, "meterValue": [{"timestamp": timestamp, "sampledValue": list(sampled)}]}
    if tx_id is not None:
        payload["transactionId"] = tx_id
    return payload


async def stored_rows(gw: Gateway, charger_id: str) -> list[tuple]:
    await gw.history.flush_log()
    return await gw.history.run(lambda: gw.history.db.conn.execute(
        "SELECT transaction_id, ts, sampled_values FROM meter_values WHERE identifier = ? ORDER BY id",
        (charger_id,)).fetchall())


async def refused(cp: TestCharger, action: str, payload: dict) -> CallErrorReply:
    with pytest.raises(CallErrorReply) as err:
        await cp.call(action, payload)
    return err.value


# --- bounded per message ----------------------------------------------------------------------
async def test_a_250_kb_sampled_value_is_refused_with_its_size_and_the_session_stays(runner: GatewayRunner):
    gw = await runner.start(registration=GUESTS_ACCEPTED)
    async with TestCharger(runner.url, "GUEST1") as cp:
        tx_id = await start(cp)
        huge = "9" * 250_000
        err = await refused(cp, "MeterValues", meter_values(tx_id, {"value": huge}))
        assert err.code == "PropertyConstraintViolation"
        assert "sampledValue[0].value" in str(err) and "250000 characters" in str(err)
        await cp.call("MeterValues", meter_values(tx_id, {"value": "1234.5"}))  # still served
        assert cp.ws.close_code is None
    rows = await stored_rows(gw, "GUEST1")
    assert [json.loads(r[2])[0]["value"] for r in rows] == ["1234.5"]
    [line] = await gw.history.general_log("GUEST1", message_type="MeterValuesError")
    assert line["level"] == "warning" and "250000 characters" in line["message"]
    assert len(line["message"]) < 2000


async def test_a_signed_meter_value_may_be_longer_than_a_reading(runner: GatewayRunner):
    """OCMF signed data (format SignedData) is a few hundred to a few thousand characters."""
    gw = await runner.start(registration=GUESTS_ACCEPTED)
    async with TestCharger(runner.url, "GUEST1") as cp:
        tx_id = await start(cp)
        ocmf = "OCMF|" + "A" * 1500
        await cp.call("MeterValues", meter_values(tx_id, {"value": ocmf, "format": "SignedData"}))
        err = await refused(cp, "MeterValues", meter_values(tx_id, {"value": "1" * 1500}))
        assert err.code == "PropertyConstraintViolation"
    assert len(await stored_rows(gw, "GUEST1")) == 1


async def test_thousands_of_sampled_values_in_one_message_are_refused(runner: GatewayRunner):
    gw = await runner.start(registration=GUESTS_ACCEPTED)
    async with TestCharger(runner.url, "GUEST1") as cp:
        tx_id = await start(cp)
        many = [{"value": str(i)} for i in range(5000)]
        err = await refused(cp, "MeterValues", meter_values(tx_id, *many))
        assert err.code == "OccurenceConstraintViolation" and "5000 sampled values" in str(err)
        assert "currentTime" in await cp.call("Heartbeat", {})
    assert await stored_rows(gw, "GUEST1") == []


async def test_a_relaxed_charger_cannot_send_a_huge_unit_or_context(runner: GatewayRunner):
    """With schema checks relaxed, unit and context are any string: still bounded."""
    gw = await runner.start(registration=GUESTS_ACCEPTED, ocpp={"validate_schemas": False})
    async with TestCharger(runner.url, "GUEST1") as cp:
        tx_id = await start(cp)
        for field in ("unit", "context", "measurand"):
            err = await refused(cp, "MeterValues", meter_values(tx_id, {"value": "1", field: "x" * 10_000}))
            assert err.code == "PropertyConstraintViolation" and field in str(err)
        # Extra fields (let in by the relaxed schema) are short strings, and few.
        err = await refused(cp, "MeterValues", meter_values(tx_id, {"value": "1", "extra": {"x": "y" * 10_000}}))
        assert err.code == "TypeConstraintViolation"
        many_fields = {"value": "1"} | {f"x{i}": "y" for i in range(50)}
        err = await refused(cp, "MeterValues", meter_values(tx_id, many_fields))
        assert err.code == "OccurenceConstraintViolation"
        await cp.call("MeterValues", meter_values(tx_id, {"value": "1", "unit": "kWh-ish", "vendorNote": "ok"}))
    assert len(await stored_rows(gw, "GUEST1")) == 1


async def test_a_stop_with_oversize_transaction_data_is_stored_without_it(runner: GatewayRunner):
    """A StopTransaction is always kept (it closes the bill); its oversize transactionData is not."""
    gw = await runner.start(registration=GUESTS_ACCEPTED)
    async with TestCharger(runner.url, "GUEST1") as cp:
        tx_id = await start(cp)
        data = [{"timestamp": T0, "sampledValue": [{"value": "7" * 100_000}]}]
        await cp.call("StopTransaction", {"transactionId": tx_id, "meterStop": 50, "timestamp": T0,
                                          "transactionData": data})
    assert (await gw.history.transaction(tx_id))["status"] == "stopped"
    assert await stored_rows(gw, "GUEST1") == []
    lines = await gw.history.general_log("GUEST1", message_type="StopTransactionRequest")
    assert any("transactionData not kept" in r["message"] and "100000 characters" in r["message"]
               for r in lines)


# --- bounded per charger ----------------------------------------------------------------------
async def test_a_charger_past_its_meter_budget_is_refused_and_others_are_not(runner: GatewayRunner):
    gw = await runner.start(registration=GUESTS_ACCEPTED, ocpp={"meter_budget_bytes_per_hour": 4000})
    async with TestCharger(runner.url, "GUEST1") as hog, TestCharger(runner.url, "GUEST2") as other:
        tx_id = await start(hog)
        other_tx = await start(other)
        value = {"value": "1" * 90, "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        codes = []
        for i in range(60):
            try:
                await hog.call("MeterValues", meter_values(tx_id, value, timestamp=f"2026-11-20T08:{i:02d}:00Z"))
                codes.append("ok")
            except CallErrorReply as exc:
                codes.append(exc.code)
                assert "budget" in str(exc)
        assert codes[0] == "ok" and codes[-1] == "GenericError"
        await other.call("MeterValues", meter_values(other_tx, value))  # its own budget
        # The stop is kept past the budget (its transactionData is not).
        await hog.call("StopTransaction", {"transactionId": tx_id, "meterStop": 50, "timestamp": T0,
                                           "transactionData": [{"timestamp": "2026-11-20T09:00:00Z",
                                                                "sampledValue": [value]}]})
    hog_rows = await stored_rows(gw, "GUEST1")
    assert 0 < len(hog_rows) == codes.count("ok")
    assert sum(len(r[2]) for r in hog_rows) <= 4000
    assert len(await stored_rows(gw, "GUEST2")) == 1
    assert (await gw.history.transaction(tx_id))["status"] == "stopped"


# --- a re-sent MeterValues is stored once -----------------------------------------------------
async def test_a_meter_values_re_sent_after_a_restart_is_stored_once(runner: GatewayRunner):
    """The answer was lost (the gateway stopped after the commit): the charger sends the same
    MeterValues again, under a new message id on a new connection."""
    gw = await runner.start()
    await gw.device_book.add_device("CP1")
    sampled = [{"value": "1000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
               {"value": "7360", "measurand": "Power.Active.Import", "unit": "W"}]
    async with TestCharger(runner.url, "CP1") as cp:
        tx_id = await start(cp)
        await cp.call("MeterValues", meter_values(tx_id, *sampled))
    await runner.stop()
    gw = await runner.start()
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.call("MeterValues", meter_values(tx_id, *sampled))  # the re-send
        # A new reading at the same timestamp is a different meterValue: kept.
        await cp.call("MeterValues", meter_values(tx_id, {"value": "230", "measurand": "Voltage", "unit": "V"}))
        # The same values without a transaction, or on another transaction, are not re-sends.
        await cp.call("MeterValues", meter_values(None, *sampled))
        await cp.call("MeterValues", meter_values(None, *sampled))
    rows = await stored_rows(gw, "CP1")
    assert [(r[0], len(json.loads(r[2]))) for r in rows] == [(tx_id, 2), (tx_id, 1), (None, 2)]


async def test_a_stop_re_sent_after_a_restart_keeps_its_transaction_data_once(runner: GatewayRunner):
    gw = await runner.start()
    await gw.device_book.add_device("CP1")
    stop_at = "2026-11-20T09:00:00Z"
    data = [{"timestamp": stop_at, "sampledValue": [{"value": "5200", "context": "Transaction.End"}]}]
    async with TestCharger(runner.url, "CP1") as cp:
        tx_id = await start(cp)
        stop = {"transactionId": tx_id, "meterStop": 5200, "timestamp": stop_at, "transactionData": data}
        await cp.call("StopTransaction", stop)
    await runner.stop()
    gw = await runner.start()
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.call("StopTransaction", stop)  # its answer was lost: the same stop again
    assert [(r[0], r[1]) for r in await stored_rows(gw, "CP1")] == [(tx_id, stop_at)]
    assert (await gw.history.transaction(tx_id))["status"] == "stopped"


async def test_a_database_from_before_the_key_gets_it_and_keeps_its_rows(tmp_path):
    """Rows stored by an older gateway have no key: they stay, and new re-sends are stored once."""
    import sqlite3

    from gateway.history.store import HistoryStore
    from gateway.ocpp.meter_rows import meter_row
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("""CREATE TABLE meter_values (
        id INTEGER PRIMARY KEY, identifier TEXT NOT NULL, connector_id INTEGER NOT NULL,
        transaction_id INTEGER, ts TEXT, energy_wh REAL, sampled_values TEXT NOT NULL)""")
    old.executemany("INSERT INTO meter_values(identifier, connector_id, transaction_id, ts, energy_wh, "
                    "sampled_values) VALUES ('CP1', 1, 7, ?, 1.0, '[{\"value\":\"1\"}]')", [(T0,), (T0,)])
    old.commit()
    old.close()
    store = HistoryStore(path)
    await store.open()
    try:
        row = meter_row("CP1", 1, 7, {"timestamp": T0, "sampledValue": [{"value": "1"}]})
        for _ in range(2):
            store.queue_meter_value(row)
        samples = await store.meter_samples("CP1")
    finally:
        await store.close()
    assert len(samples) == 3  # the old two, and the new one once
