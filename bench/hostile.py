"""Hostile corpus beside honest chargers: what every bad frame is answered, and what it costs them.

``python -m bench.hostile --frames 100000 --honest 20 --hostile 8`` starts the gateway in its own
process (no password, guests accepted, BACnet and Modbus off), connects 20 honest chargers that run
transactions (Start, two MeterValues, Stop) and, after a quiet phase, hostile connections that
send the corpus of `bench.hostile_corpus` one frame at a time, reading each answer (a frame that
expects none is followed by a Heartbeat probe: its answer proves the frame was passed over).
Prints one JSON object: per category the answers got and whether they were the expected ones,
close codes seen (1011 must be 0), the honest chargers' StopTransaction latency in the quiet,
hostile and after phases, the gateway's RSS before, at the peak and after, and the general log
and meter values stored per kind of peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import websockets

from bench import hostile_corpus as corpus
from bench.procstat import rss_kib
from bench.run import ServerUnderTest, free_port, gateway_command
from bench.stats import percentiles_ms

GATEWAY_TOML = """\
[ocpp]
host = "{host}"
port = {port}
# The worst case on purpose: no password and guests accepted, so every hostile frame gets past the
# handshake and the registration rule to the frame and schema checks measured here.
require_password = false
[registration]
guest_response = "Accepted"
[database]
path = "{data_dir}/gateway.sqlite"
[admin]
port = {admin_port}
[bacnet]
enabled = false
[modbus]
enabled = false
"""
ANSWER_TIMEOUT_S = 30.0


def answer_label(text: str | bytes) -> tuple[str, str]:
    """(label, message id) of a gateway reply."""
    msg = json.loads(text)
    if msg[0] == 3:
        return "CALLRESULT", msg[1]
    if msg[0] == 4:
        return msg[2], msg[1]
    return f"message type {msg[0]}", msg[1]


class Hostile:
    """One hostile connection: sends its probes in turn and files each answer under its category."""

    def __init__(self, url: str, charger_id: str, answers: dict[str, Counter[str]]) -> None:
        self.url, self.charger_id, self.answers = f"{url}{charger_id}", charger_id, answers
        self.ws: Any = None
        self.probes = 0
        self.closes: Counter[str] = Counter()

    async def run(self, probes: list[corpus.Probe]) -> None:
        for p in probes:
            try:
                if self.ws is None:
                    self.ws = await websockets.connect(self.url, subprotocols=["ocpp1.6"], compression=None,
                                                       max_size=2**20, ping_interval=None)
                self.answers[p.category][await self.send(p)] += 1
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                self.answers[p.category][f"close {code}"] += 1
                self.closes[str(code)] += 1
                self.ws = None
            except TimeoutError:  # no answer in time: counted, and a fresh connection goes on
                self.answers[p.category][f"no answer in {ANSWER_TIMEOUT_S:g} s"] += 1
                await self.ws.close()
                self.ws = None
        if self.ws is not None:
            await self.ws.close()

    async def send(self, p: corpus.Probe) -> str:
        await self.ws.send(p.frame, text=p.text_frame)
        if p.closes:
            await asyncio.wait_for(self.ws.wait_closed(), ANSWER_TIMEOUT_S)
            code = self.ws.close_code
            self.ws = None
            self.closes[str(code)] += 1
            return f"close {code}"
        if p.uid is None:  # nothing may come back: a probe's answer shows the frame was passed over
            self.probes += 1
            probe_id = f"probe-{self.probes}"
            await self.ws.send(json.dumps([2, probe_id, "Heartbeat", {}]))
            label, uid = await self.reply()
            return "no answer" if uid == probe_id else f"{label} (to {uid})"
        label, uid = await self.reply()
        return label if uid == p.uid else f"{label} (to {uid})"

    async def reply(self) -> tuple[str, str]:
        while True:
            label, uid = answer_label(await asyncio.wait_for(self.ws.recv(), ANSWER_TIMEOUT_S))
            if label != "message type 2":  # a call from the gateway: not an answer
                return label, uid


class Honest:
    """A charger in transactions; its StopTransaction latency is filed under the current phase."""

    def __init__(self, url: str, charger_id: str, pause_s: float) -> None:
        self.url, self.charger_id, self.pause_s = f"{url}{charger_id}", charger_id, pause_s
        self.stops: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.phase = "warm-up"
        self.running = True
        self._ids = 0

    async def call(self, ws: Any, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._ids += 1
        uid = str(self._ids)
        await ws.send(json.dumps([2, uid, action, payload]))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))
            if msg[0] == 2:  # the gateway's own calls after boot: say not implemented
                await ws.send(json.dumps([4, msg[1], "NotImplemented", "", {}]))
            elif msg[1] == uid:
                if msg[0] == 4:
                    self.errors[msg[2]] += 1
                    return {}
                return msg[2]

    async def run(self) -> None:
        try:
            await self.transactions()
        except websockets.ConnectionClosed as exc:  # must not happen: counted, and the run goes on
            self.errors[f"connection closed {exc.rcvd.code if exc.rcvd else 1006}"] += 1
        except (websockets.InvalidStatus, OSError, TimeoutError) as exc:
            self.errors[type(exc).__name__] += 1

    async def transactions(self) -> None:
        async with websockets.connect(self.url, subprotocols=["ocpp1.6"], compression=None) as ws:
            await self.call(ws, "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Honest"})
            meter = 0
            while self.running:
                ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                start = await self.call(ws, "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": meter,
                                                                 "timestamp": ts})
                tx_id = start.get("transactionId", 0)
                for _ in range(2):
                    meter += 100
                    await asyncio.sleep(self.pause_s)
                    await self.call(ws, "MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": [
                        {"timestamp": ts, "sampledValue": [{"value": str(meter)}]}]})
                await asyncio.sleep(self.pause_s)
                phase, t0 = self.phase, time.perf_counter()
                await self.call(ws, "StopTransaction", {"transactionId": tx_id, "meterStop": meter, "timestamp": ts})
                self.stops[phase].append(time.perf_counter() - t0)
                await asyncio.sleep(self.pause_s)


def build_corpus(frames: int, closing_each: int, seed: int) -> tuple[list[corpus.Probe], list[corpus.Probe]]:
    """The frames in a random order (duplicates follow their first copy), and the closing ones."""
    rng = random.Random(seed)
    names = list(corpus.WEIGHTS) + [corpus.DUPLICATE_SAME, corpus.DUPLICATE_OTHER]
    weights = list(corpus.WEIGHTS.values()) + [corpus.DUPLICATE_SHARE] * 2
    probes: list[corpus.Probe] = []
    for n, name in enumerate(rng.choices(names, weights, k=frames)):
        if name == corpus.DUPLICATE_SAME:  # a re-send: the first answer again
            frame = json.dumps([2, f"d{n}", "Heartbeat", {}])
            probes += [corpus.Probe("(first copy)", frame, f"d{n}", "CALLRESULT"),
                       corpus.Probe(name, frame, f"d{n}", "CALLRESULT")]
        elif name == corpus.DUPLICATE_OTHER:  # a new message under a used id: handled as new
            probes.append(corpus.Probe("(first copy)", json.dumps([2, f"d{n}", "Heartbeat", {}]), f"d{n}",
                                       "CALLRESULT"))
            probes.append(corpus.Probe(name, json.dumps([2, f"d{n}", "DataTransfer", {"vendorId": "x"}]),
                                       f"d{n}", "CALLRESULT"))
        else:
            probes.append(corpus.probe(name, n))
    closing = [corpus.probe(name, i) for name in corpus.CLOSING for i in range(closing_each)]
    return probes, closing


async def sample_rss(pid: int, peak: list[int], done: asyncio.Event) -> None:
    while not done.is_set():
        peak[0] = max(peak[0], rss_kib(pid) or 0)
        await asyncio.sleep(0.5)


async def ask_memory_probe(args: argparse.Namespace, pid: int) -> None:
    """Ask the memory probe for a breakdown (after the RSS was read: the probe allocates too)."""
    if args.probe:
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(1.0)


def breakdown(path: Path) -> dict[str, Any]:
    """The probe's lines before and after the load, and the difference of every number."""
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if len(lines) < 2:
        return {}

    def diff(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {k: diff(a.get(k), b[k]) for k in b}
        return b - a if isinstance(a, int | float) and isinstance(b, int | float) else b

    before, after = lines[0], lines[1]
    return {"before": before, "after": after, "grew": diff(before, after)}


async def load(args: argparse.Namespace, url: str, pid: int) -> dict[str, Any]:
    """The three phases; returns the figures measured from outside the gateway."""
    honest = [Honest(url, f"HONEST-{i:02d}", args.pause) for i in range(args.honest)]
    tasks = [asyncio.create_task(h.run()) for h in honest]

    def phase(name: str) -> None:
        for h in honest:
            h.phase = name

    await asyncio.sleep(args.quiet)  # warm-up: boots, the configuration reads after them
    phase("quiet")
    await asyncio.sleep(args.quiet)
    rss_before = rss_kib(pid)
    await ask_memory_probe(args, pid)
    probes, closing = build_corpus(args.frames, args.closing, args.seed)
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    expected = {p.category: p.expected for p in probes + closing}
    hostile = [Hostile(url, f"HOSTILE-{i}", answers) for i in range(args.hostile)]
    peak, done = [rss_before or 0], asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, peak, done))
    phase("hostile")
    t0 = time.perf_counter()
    await asyncio.gather(*(h.run(probes[i::args.hostile]) for i, h in enumerate(hostile)),
                         Hostile(url, "HOSTILE-CLOSE", answers).run(closing))
    hostile_s = time.perf_counter() - t0
    done.set()
    await sampler
    phase("after")
    await asyncio.sleep(args.after)
    rss_after = rss_kib(pid)
    await ask_memory_probe(args, pid)
    for h in honest:
        h.running = False
    await asyncio.gather(*tasks, return_exceptions=True)
    closes = sum((h.closes for h in hostile), Counter())
    return {
        "frames_sent": len(probes) + len(closing), "hostile_seconds": round(hostile_s, 1),
        "categories": {name: {"expected": expected[name], "answers": dict(got),
                              "as_expected": sum(got.get(e, 0) for e in expected[name].split(" or ")),
                              "total": sum(got.values())}
                       for name, got in sorted(answers.items())},
        "close_codes_on_hostile_connections": dict(closes),
        "honest_stop_transaction_ms": {ph: percentiles_ms(sum((h.stops[ph] for h in honest), []))
                                       for ph in ("quiet", "hostile", "after")},
        "honest_errors": dict(sum((h.errors for h in honest), Counter())),
        "rss_kib": {"before": rss_before, "peak": peak[0], "after": rss_after},
    }


def stored(data_dir: Path) -> dict[str, Any]:
    """What the gateway kept: general-log text per kind of peer, honest transactions stopped."""
    db = sqlite3.connect(data_dir / "gateway.sqlite")
    try:
        log = {kind: db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(message)), 0) FROM general_log "
                                "WHERE identifier LIKE ?", (f"{kind}-%",)).fetchone()
               for kind in ("HONEST", "HOSTILE")}
        meters = {kind: db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(sampled_values)), 0) FROM meter_values "
                                   "WHERE identifier LIKE ?", (f"{kind}-%",)).fetchone()
                  for kind in ("HONEST", "HOSTILE")}
        stopped = db.execute("SELECT COUNT(*) FROM transactions WHERE identifier LIKE 'HONEST-%' "
                             "AND status = 'stopped'").fetchone()[0]
    finally:
        db.close()
    return {"general_log_rows_and_chars": {k: list(v) for k, v in log.items()},
            "meter_value_rows_and_chars": {k: list(v) for k, v in meters.items()},
            "honest_transactions_stopped": stopped,
            "database_bytes": sum(f.stat().st_size for f in data_dir.glob("gateway.sqlite*"))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=100_000, help="hostile frames (besides the closing ones)")
    p.add_argument("--closing", type=int, default=50, help="invalid UTF-8 and oversize frames, each")
    p.add_argument("--honest", type=int, default=20)
    p.add_argument("--hostile", type=int, default=8, help="hostile connections sending at once")
    p.add_argument("--pause", type=float, default=0.2, help="seconds between an honest charger's messages")
    p.add_argument("--quiet", type=float, default=10.0, help="seconds of warm-up, then of quiet measurement")
    p.add_argument("--after", type=float, default=20.0, help="seconds measured after the hostile load")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--probe", action="store_true", help="run the gateway under bench.memprobe: a memory "
                   "breakdown before and after the load")
    p.add_argument("--tracemalloc", action="store_true", help="with --probe: trace Python allocations too")
    p.add_argument("--cycles", action="store_true", help="with --probe: name what only reference cycles keep")
    p.add_argument("--keep", help="write the gateway's data and log in this directory and keep them")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        port, data_dir = free_port(args.host), work / "data"
        data_dir.mkdir(exist_ok=True)
        config = work / "gateway.toml"
        config.write_text(GATEWAY_TOML.format(host=args.host, port=port, data_dir=data_dir,
                                              admin_port=free_port(args.host)))
        probe_out = work / "memprobe.jsonl"
        probe_out.unlink(missing_ok=True)  # a kept directory's earlier run
        template = "{python} -m gateway.main --config {config} run"
        if args.probe:
            options = " ".join(o for o, on in (("--tracemalloc", args.tracemalloc), ("--cycles", args.cycles)) if on)
            template = f"{{python}} -m bench.memprobe {probe_out} {options} -- --config {{config}} run"
        argv_gw = gateway_command(template, config, args.host, port, data_dir)
        server = ServerUnderTest("gateway", argv_gw, args.host, port, work / "gateway.log", None)
        pid = server.start(60.0)
        try:
            result = asyncio.run(load(args, f"ws://{args.host}:{port}/ocpp/", pid))
        finally:
            server.stop()
        result["gateway_log_lines_with_traceback"] = server.log_tail(100000).count("Traceback")
        result.update(stored(data_dir))
        if args.probe:
            result["memory"] = breakdown(probe_out)
    result["settings"] = vars(args)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
