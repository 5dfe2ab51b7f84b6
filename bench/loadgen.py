"""Raw-frame OCPP 1.6-J load generator: N chargers, a boot storm, then open-loop MeterValues stages.

Run it in its own process (``python -m bench.loadgen --url ws://127.0.0.1:PORT/ocpp/ ...``)
so that its CPU never competes with the server under test. It prints one JSON line.

Why open-loop: every MeterValues has a scheduled send time on a fixed-rate timeline and its
latency is measured from that time, so a slow server cannot hide queueing by slowing the
generator down (no coordinated omission). OCPP allows one outstanding CALL per side, so a
charger whose previous call is unanswered queues the next one, as a real charger does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import resource
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bench import frames, procstat

SUBPROTOCOL = "ocpp1.6"
MAX_SIZE = 256 * 1024
ENERGY_STEP_WH = 31  # 11 kW for 10 s, so stored meter readings keep rising like a real session

_uids = itertools.count(1)


def _percentiles_ms(samples: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p99/max of latencies given in seconds, in ms (nearest-rank)."""
    if not samples:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(samples)
    n = len(ordered)

    def rank(q: float) -> float:
        return round(ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))] * 1000.0, 3)

    return {"count": n, "p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1] * 1000.0, 3)}


class GenHealth:
    """The generator's own pauses: GC collections and event-loop lag.

    Latency is taken from the scheduled send time, so a generator pause shows up as server
    latency. These figures tell the two apart: a p99 spike next to a generator pause of the
    same size is the generator's.
    """

    def __init__(self) -> None:
        self.gc_max_s = 0.0
        self.gc_collections = 0
        self.lag_max_s = 0.0
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_collections += 1
            self.gc_max_s = max(self.gc_max_s, time.perf_counter() - self._gc_started)

    def reset(self) -> None:
        self.gc_max_s = self.lag_max_s = 0.0
        self.gc_collections = 0

    async def watch_loop(self, tick_s: float = 0.005) -> None:
        """Sleep in short ticks; any overshoot is time the loop could not run us."""
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(tick_s)
            self.lag_max_s = max(self.lag_max_s, time.perf_counter() - t0 - tick_s)

    def report(self) -> dict[str, float | int]:
        return {
            "gen_gc_collections": self.gc_collections,
            "gen_gc_max_ms": round(self.gc_max_s * 1000.0, 1),
            "gen_loop_lag_max_ms": round(self.lag_max_s * 1000.0, 1),
        }


class Stage:
    """What one MeterValues stage measured; latencies only for sends scheduled in the window."""

    def __init__(self, rate: float, window_start: float, window_end: float) -> None:
        self.rate = rate
        self.window_start = window_start
        self.window_end = window_end
        self.latencies: list[float] = []
        self.rtts: list[float] = []
        self.scheduled = 0
        self.completed_in_window = 0
        self.errors: Counter[str] = Counter()

    def record(self, sched: float, sent: float, now: float, ok: bool) -> None:
        if not ok:
            self.errors["callerror"] += 1
        if self.window_start <= sched < self.window_end:
            self.latencies.append(now - sched)
            self.rtts.append(now - sent)
        if self.window_start <= now < self.window_end:
            self.completed_in_window += 1


class Charger:
    """One simulated charger: a websocket, a reader task and at most one CALL in flight."""

    def __init__(self, gen: LoadGen, charger_id: str, id_tag: str) -> None:
        self.gen = gen
        self.charger_id = charger_id
        self.id_tag = id_tag
        self.ws: ClientConnection | None = None
        self.alive = False
        self.transaction_id: int | None = None
        self.energy_wh = 0
        self.meter_template = ""
        # The call in flight: its uniqueId, and either a future (setup calls) or the
        # scheduled and actual send times (MeterValues).
        self.inflight_uid: str | None = None
        self.waiter: asyncio.Future[list[Any]] | None = None
        self.inflight_sched = 0.0
        self.inflight_sent = 0.0
        self.backlog: deque[float] = deque()
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> float:
        """Connect; return the handshake time in seconds."""
        t0 = time.perf_counter()
        self.ws = await connect(
            self.gen.url + self.charger_id,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            proxy=None,  # else every connect scans os.environ for *_proxy: 0.4 ms each, storm-bound
            max_size=MAX_SIZE,
            open_timeout=self.gen.call_timeout,
            ping_interval=None,  # the server pings; client pings would only add generator load
            close_timeout=2,
        )
        elapsed = time.perf_counter() - t0
        if self.ws.subprotocol != SUBPROTOCOL:
            self.gen.storm_errors["subprotocol_not_ocpp16"] += 1
        self.alive = True
        self.reader = asyncio.create_task(self._read())
        return elapsed

    async def call(self, template: str) -> list[Any] | None:
        """Send one setup CALL and wait for its answer; None on timeout or disconnect."""
        if not self.alive or self.ws is None:
            return None
        uid = str(next(_uids))
        self.waiter = asyncio.get_running_loop().create_future()
        self.inflight_uid = uid
        try:
            await self.ws.send(template % {"uid": uid, "ts": self.gen.clock.now(), "wh": self.energy_wh})
            async with asyncio.timeout(self.gen.call_timeout):  # no extra task, unlike wait_for
                answer = await self.waiter
            return answer or None  # [] means the connection closed while waiting
        except TimeoutError:
            self.gen.storm_errors["timeout"] += 1
            return None
        except ConnectionClosed:
            return None
        finally:
            self.inflight_uid = None
            self.waiter = None

    async def schedule(self, sched: float) -> None:
        """Send a MeterValues now, or queue it behind the call in flight."""
        if not self.alive:
            self.gen.stage_errors["send_on_closed"] += 1
            return
        self.gen.outstanding += 1
        if self.inflight_uid is None:
            await self._send_meter(sched)
        else:
            self.backlog.append(sched)

    async def _send_meter(self, sched: float) -> None:
        assert self.ws is not None
        uid = str(next(_uids))
        self.energy_wh += ENERGY_STEP_WH
        frame = self.meter_template % {"uid": uid, "ts": self.gen.clock.now(), "wh": self.energy_wh}
        self.inflight_uid = uid
        self.inflight_sched = sched
        self.inflight_sent = time.perf_counter()
        try:
            await self.ws.send(frame)
        except ConnectionClosed:
            pass  # the reader sees the close and accounts for the lost calls

    async def finish_meter(self) -> None:
        """Release the slot of the MeterValues in flight and send the next queued one."""
        self.inflight_uid = None
        self.gen.outstanding -= 1
        if self.backlog and self.alive:
            await self._send_meter(self.backlog.popleft())

    def abandon(self) -> int:
        """Forget the call in flight and the queue (stage drain deadline); return how many."""
        lost = len(self.backlog) + (1 if self.inflight_uid is not None and self.waiter is None else 0)
        self.backlog.clear()
        if self.waiter is None:
            self.inflight_uid = None
        return lost

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                await self._on_frame(raw)
        except ConnectionClosed:
            pass
        finally:
            self.alive = False
            if not self.gen.closing:
                self.gen.disconnects += 1
                if self.gen.stage is not None:
                    self.gen.stage.errors["disconnect"] += 1
                    self.gen.outstanding -= self.abandon()
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result([])

    async def _on_frame(self, raw: str | bytes) -> None:
        now = time.perf_counter()
        try:
            msg = json.loads(raw)
            kind = msg[0]
            uid = msg[1]
        except (ValueError, IndexError, KeyError, TypeError):
            self.gen.bad_frames += 1
            return
        if kind == 2:
            await self._answer_server_call(uid, msg[2] if len(msg) > 2 else "")
            return
        if uid != self.inflight_uid:
            self.gen.late_answers += 1  # answer to a call we already gave up on
            return
        if self.waiter is not None:
            if not self.waiter.done():
                self.waiter.set_result(msg)
            return
        stage = self.gen.stage
        if stage is not None:
            stage.record(self.inflight_sched, self.inflight_sent, now, kind == 3)
        await self.finish_meter()

    async def _answer_server_call(self, uid: str, action: str) -> None:
        """Answer a CALL from the server as a minimal charger would, so it never waits on us."""
        assert self.ws is not None
        self.gen.server_calls[action] += 1
        payload = frames.SERVER_CALL_ANSWERS.get(action)
        if payload is None:
            answer = json.dumps([4, uid, "NotImplemented", f"load generator does not implement {action}", {}])
        else:
            answer = f"[3,{json.dumps(uid)},{payload}]"
        try:
            await self.ws.send(answer)
        except ConnectionClosed:
            pass


class LoadGen:
    """Runs the storm and the stages over a fleet of chargers and builds the JSON report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url = args.url if args.url.endswith("/") else args.url + "/"
        self.n = args.chargers
        self.rates = args.rates
        self.stage_seconds = args.stage_seconds
        self.warmup_seconds = (
            args.warmup_seconds if args.warmup_seconds is not None else min(3.0, args.stage_seconds / 4)
        )
        self.drain_seconds = args.drain_seconds
        self.connect_concurrency = args.connect_concurrency
        self.call_timeout = args.call_timeout
        self.server_pid: int | None = args.server_pid
        self.stop_transactions = not args.no_stop
        self.clock = frames.Clock()
        self.chargers = [
            Charger(self, f"{args.id_prefix}{i:05d}", f"TAG{i:05d}") for i in range(1, self.n + 1)
        ]
        self.closing = False
        self.stage: Stage | None = None
        self.outstanding = 0
        self.disconnects = 0
        self.late_answers = 0
        self.bad_frames = 0
        self.storm_errors: Counter[str] = Counter()
        self.stage_errors: Counter[str] = Counter()
        self.server_calls: Counter[str] = Counter()
        self.gen_gc = args.gen_gc
        self.health = GenHealth()

    # ---- stage 1: connect + boot storm -------------------------------------------------

    async def _setup_one(
        self, charger: Charger, gate: asyncio.Semaphore, lat: dict[str, list[float]]
    ) -> bool:
        async with gate:
            try:
                lat["connect"].append(await charger.open())
            except (OSError, TimeoutError, WebSocketException):
                self.storm_errors["connect_failed"] += 1
                return False
            steps = (
                ("BootNotification", frames.boot_notification(charger.charger_id)),
                ("StatusNotification", frames.status_notification(0, "Available")),
                ("StatusNotification", frames.status_notification(1, "Available")),
                ("Authorize", frames.authorize(charger.id_tag)),
                ("StartTransaction", frames.start_transaction(charger.id_tag)),
                ("StatusNotification", frames.status_notification(1, "Charging")),
            )
            ok = True
            for action, template in steps:
                t0 = time.perf_counter()
                answer = await charger.call(template)
                if answer is None:
                    ok = False
                    if not charger.alive:
                        self.storm_errors["disconnect"] += 1
                        return False
                    continue
                lat[action].append(time.perf_counter() - t0)
                lat["all_calls"].append(time.perf_counter() - t0)
                ok = self._check_setup_answer(charger, action, answer) and ok
            charger.meter_template = frames.meter_values(charger.transaction_id)
            return ok

    def _check_setup_answer(self, charger: Charger, action: str, answer: list[Any]) -> bool:
        """Count CALLERRORs and refusals: a refused charger makes the later stages meaningless."""
        if answer[0] != 3 or len(answer) < 3 or not isinstance(answer[2], dict):
            self.storm_errors["callerror"] += 1
            return False
        payload = answer[2]
        if action == "BootNotification" and payload.get("status") != "Accepted":
            self.storm_errors["boot_not_accepted"] += 1
            return False
        if action in ("Authorize", "StartTransaction"):
            if payload.get("idTagInfo", {}).get("status") != "Accepted":
                self.storm_errors["id_tag_not_accepted"] += 1
                return False
        if action == "StartTransaction":
            tx = payload.get("transactionId")
            if not isinstance(tx, int):
                self.storm_errors["no_transaction_id"] += 1
                return False
            charger.transaction_id = tx
        return True

    async def storm(self) -> dict[str, Any]:
        gate = asyncio.Semaphore(self.connect_concurrency)
        actions = (
            "connect",
            "all_calls",
            "BootNotification",
            "StatusNotification",
            "Authorize",
            "StartTransaction",
        )
        lat: dict[str, list[float]] = {a: [] for a in actions}
        cpu0, gen_cpu0, machine0 = (
            self._server_cpu(),
            procstat.cpu_seconds(os.getpid()),
            procstat.machine_times(),
        )
        t0 = time.perf_counter()
        results = await asyncio.gather(*(self._setup_one(c, gate, lat) for c in self.chargers))
        seconds = time.perf_counter() - t0
        cpu1, gen_cpu1, machine1 = (
            self._server_cpu(),
            procstat.cpu_seconds(os.getpid()),
            procstat.machine_times(),
        )
        calls = len(lat["all_calls"])
        return {
            "seconds": round(seconds, 3),
            "chargers_ok": sum(results),
            "calls": calls,
            "calls_per_s": round(calls / seconds, 1) if seconds > 0 else None,
            "server_cpu_pct": procstat.cpu_percent(cpu0, cpu1, seconds),
            # A storm near 100% generator CPU measures the generator, not the server.
            "gen_cpu_pct": procstat.cpu_percent(gen_cpu0, gen_cpu1, seconds),
            **procstat.others_percent(machine0, machine1, _own_cpu(cpu0, cpu1, gen_cpu0, gen_cpu1), seconds),
            "latency_ms": {a: _percentiles_ms(v) for a, v in lat.items()},
            "errors": dict(self.storm_errors),
            "error_total": sum(self.storm_errors.values()),
        }

    # ---- stage 2: open-loop MeterValues ------------------------------------------------

    async def run_stage(self, rate: float) -> dict[str, Any]:
        fleet = self.chargers
        n = len(fleet)
        interval = 1.0 / rate
        total = int(rate * self.stage_seconds)
        t0 = time.perf_counter() + 0.05
        stage = Stage(rate, t0 + self.warmup_seconds, t0 + self.stage_seconds)
        self.stage = stage
        self.stage_errors = stage.errors
        sweeper = asyncio.create_task(self._sweep_timeouts(stage))
        gen_cpu0 = procstat.cpu_seconds(os.getpid())
        srv_cpu0: float | None = None
        machine0: tuple[float, float] | None = None
        window_sampled = False
        k = 0
        while k < total:
            now = time.perf_counter()
            if not window_sampled and now >= stage.window_start:
                srv_cpu0, gen_cpu0, machine0 = (
                    self._server_cpu(),
                    procstat.cpu_seconds(os.getpid()),
                    procstat.machine_times(),
                )
                window_sampled = True
                self.health.reset()
            while k < total and t0 + k * interval <= now:
                await fleet[k % n].schedule(t0 + k * interval)
                k += 1
            delay = t0 + k * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        stage.scheduled = k
        # The schedule ends at window_end; sample CPU there, before the drain.
        await asyncio.sleep(max(0.0, stage.window_end - time.perf_counter()))
        window = stage.window_end - stage.window_start
        srv_cpu1, gen_cpu1 = self._server_cpu(), procstat.cpu_seconds(os.getpid())
        machine1, health = procstat.machine_times(), self.health.report()
        unfinished = await self._drain(stage)
        sweeper.cancel()
        self.stage = None
        achieved = stage.completed_in_window / window if window > 0 else 0.0
        error_total = sum(stage.errors.values())
        return {
            "offered_rate": rate,
            "achieved_rate": round(achieved, 1),
            "scheduled": stage.scheduled,
            "measured": len(stage.latencies),
            "latency_ms": _percentiles_ms(stage.latencies),
            "rtt_ms": _percentiles_ms(stage.rtts),
            "errors": dict(stage.errors),
            "error_total": error_total,
            "unfinished": unfinished,
            "server_cpu_pct": procstat.cpu_percent(srv_cpu0, srv_cpu1, window),
            "gen_cpu_pct": procstat.cpu_percent(gen_cpu0, gen_cpu1, window),
            "server_rss_kib": self._server_rss(),
            **procstat.others_percent(
                machine0, machine1, _own_cpu(srv_cpu0, srv_cpu1, gen_cpu0, gen_cpu1), window
            ),
            **health,
            "sustained": achieved >= 0.97 * rate and error_total == 0 and unfinished == 0,
        }

    async def _drain(self, stage: Stage) -> int:
        """Wait for answers to everything scheduled; count the rest as unfinished.

        Calls still unanswered at the deadline enter the latency sample with their age at
        that moment, so a saturated stage reports a lower bound rather than dropping them.
        """
        deadline = stage.window_end + self.drain_seconds
        while self.outstanding > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        if self.outstanding <= 0:
            return 0
        now = time.perf_counter()
        unfinished = 0
        for charger in self.chargers:
            pending = list(charger.backlog)
            if charger.inflight_uid is not None and charger.waiter is None:
                pending.append(charger.inflight_sched)
            for sched in pending:
                if stage.window_start <= sched < stage.window_end:
                    stage.latencies.append(now - sched)
            unfinished += charger.abandon()
        self.outstanding = 0
        return unfinished

    async def _sweep_timeouts(self, stage: Stage) -> None:
        """Give up on MeterValues unanswered for call_timeout, as a charger's own timeout would."""
        while True:
            await asyncio.sleep(0.5)
            limit = time.perf_counter() - self.call_timeout
            for charger in self.chargers:
                if (
                    charger.inflight_uid is not None
                    and charger.waiter is None
                    and charger.inflight_sent < limit
                ):
                    stage.errors["timeout"] += 1
                    await charger.finish_meter()

    # ---- teardown and report -----------------------------------------------------------

    async def teardown(self) -> dict[str, Any]:
        """StopTransaction on every charger, so repeated runs leave the gateway's database tidy."""
        gate = asyncio.Semaphore(self.connect_concurrency)
        failures = 0

        async def stop(charger: Charger) -> None:
            nonlocal failures
            if charger.transaction_id is None or not charger.alive:
                return
            async with gate:
                answer = await charger.call(frames.stop_transaction(charger.transaction_id))
                if answer is None or answer[0] != 3:
                    failures += 1

        t0 = time.perf_counter()
        if self.stop_transactions:
            await asyncio.gather(*(stop(c) for c in self.chargers))
        seconds = time.perf_counter() - t0
        self.closing = True
        await asyncio.gather(
            *(c.ws.close() for c in self.chargers if c.ws is not None), return_exceptions=True
        )
        return {
            "stop_transactions": self.stop_transactions,
            "seconds": round(seconds, 3),
            "failures": failures,
        }

    def _server_cpu(self) -> float | None:
        return procstat.cpu_seconds(self.server_pid) if self.server_pid else None

    def _server_rss(self) -> int | None:
        return procstat.rss_kib(self.server_pid) if self.server_pid else None

    async def run(self) -> dict[str, Any]:
        rss_before = self._server_rss()
        watcher = asyncio.create_task(self.health.watch_loop())
        storm = await self.storm()
        rss_after = self._server_rss()
        if self.gen_gc != "default":
            # The fleet's objects live to the end: keep the collector from rescanning them
            # (a gen-2 pass over 5,000 connections stalls the loop for 0.1-0.2 s).
            gc.collect()
            gc.freeze()
            if self.gen_gc == "off":
                gc.disable()
        stages = [await self.run_stage(rate) for rate in self.rates]
        gc.enable()
        watcher.cancel()
        teardown = await self.teardown()
        per_charger = (
            round((rss_after - rss_before) / self.n, 1)
            if rss_before is not None and rss_after is not None and self.n
            else None
        )
        errors_total = storm["error_total"] + sum(s["error_total"] + s["unfinished"] for s in stages)
        errors_total += teardown["failures"]
        return {
            "url": self.url,
            "chargers": self.n,
            "connect_concurrency": self.connect_concurrency,
            "stage_seconds": self.stage_seconds,
            "warmup_seconds": self.warmup_seconds,
            "gen_gc": self.gen_gc,
            "storm": storm,
            "server": {
                "pid": self.server_pid,
                "rss_before_kib": rss_before,
                "rss_after_setup_kib": rss_after,
                "rss_kib_per_charger": per_charger,
            },
            "stages": stages,
            "teardown": teardown,
            "counters": {
                "disconnects": self.disconnects,
                "late_answers": self.late_answers,
                "bad_frames": self.bad_frames,
                "server_calls": dict(self.server_calls),
            },
            "errors_total": errors_total,
        }


def _own_cpu(*samples: float | None) -> float | None:
    """Server plus generator CPU seconds between two samples each (srv0, srv1, gen0, gen1)."""
    if any(x is None for x in samples):
        return None
    srv0, srv1, gen0, gen1 = samples
    return (srv1 - srv0) + (gen1 - gen0)  # type: ignore[operator]


def raise_fd_limit() -> None:
    """Each charger is a socket; lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive numbers, e.g. 1000,2000")
    return rates


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    p.add_argument(
        "--url",
        required=True,
        help="endpoint prefix; the charger id is appended, e.g. ws://127.0.0.1:9000/ocpp/",
    )
    p.add_argument("--chargers", type=int, default=1000)
    p.add_argument(
        "--rates",
        type=parse_rates,
        default=parse_rates("1000,2000,5000"),
        help="total MeterValues/s per stage, comma-separated",
    )
    p.add_argument("--stage-seconds", type=float, default=10.0)
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=None,
        help="start of each stage left out of latency and rate (default min(3, stage/4))",
    )
    p.add_argument(
        "--drain-seconds", type=float, default=5.0, help="how long after a stage to wait for its answers"
    )
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--call-timeout", type=float, default=30.0)
    p.add_argument("--server-pid", type=int, default=None, help="server process to read RSS and CPU from")
    p.add_argument("--id-prefix", default="BENCH")
    p.add_argument(
        "--gen-gc",
        choices=("default", "freeze", "off"),
        default="freeze",
        help="generator GC during the stages: off (after a freeze) keeps its pauses out of the latency",
    )
    p.add_argument("--no-stop", action="store_true", help="skip the StopTransaction teardown")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raise_fd_limit()
    result = asyncio.run(LoadGen(args).run())
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
