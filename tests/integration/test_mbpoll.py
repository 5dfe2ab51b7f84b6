"""The mbpoll commands docs/modbus.md prints, run against a real gateway (issue 14).

mbpoll is an independent Modbus client (Debian package `mbpoll`; CI installs it). Every command
of the "Trying it with mbpoll" section is run as printed, with the test's port.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GatewayRunner
from tests.integration.test_modbus import charging_charger, settled

pytestmark = pytest.mark.skipif(shutil.which("mbpoll") is None,
                                reason="mbpoll is not installed (apt-get install mbpoll; CI installs it)")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "modbus.md"


def documented_commands() -> list[tuple[list[str], str]]:
    """(argv, comment) of each mbpoll line of the docs' example block."""
    section = DOCS.read_text().split("## Trying it with mbpoll", 1)[1].split("```")[1]
    out = []
    for line in section.strip().splitlines():
        command, _, comment = line.partition("#")
        out.append((command.split(), comment.strip()))
    return out


async def mbpoll(argv: list[str], port: int) -> tuple[int, str]:
    argv = [str(port) if prev == "-p" else arg for prev, arg in zip(["", *argv], argv, strict=False)]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode or 0, out.decode()


async def test_every_documented_mbpoll_command_does_what_its_comment_says(runner: GatewayRunner):
    gateway = await runner.start(modbus={"enabled": True, "port": 0})
    await gateway.device_book.add_device("CP1")
    cp = await charging_charger(runner, "CP1", 7650.0, 1.0)
    cp.answers["ChangeAvailability"] = lambda payload: {"status": "Accepted"}
    port = gateway.ports["modbus"]
    table = gateway.points.table
    try:
        await settled(gateway)
        results = {comment: await mbpoll(argv, port) for argv, comment in documented_commands()}
    finally:
        await cp.close()
    outputs = {c: out for c, (_code, out) in results.items()}
    codes = {c: code for c, (code, _out) in results.items()}
    status, power = outputs["slot 1 connector 1 status"], outputs["its power (W), high word first"]
    assert re.search(r"\[1410\]:\s+3\b", status), status  # Charging
    assert re.search(r"\[1510\]:\s+7650", power), power
    wrong_order = next(c for c in outputs if "refused" in c)
    assert codes[wrong_order] != 0 and "Illegal data value" in outputs[wrong_order], outputs[wrong_order]
    assert table.read(table.get("Site-PowerLimit")) == 22.0  # the -B write, not the refused one
    assert table.read(table.get("CP1-C1-Availability-Result")) == "Accepted"
    header = outputs["site header: map version, layout, chargers added, online, highest slot"]
    assert re.search(r"\[0\]:\s+2\b", header) and re.search(r"\[6\]:\s+1\b", header), header
