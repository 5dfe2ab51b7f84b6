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
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from websockets.exceptions import WebSocketException

from bench import frames, procstat
from bench.charger import Charger
from bench.stats import GenHealth, Stage, own_cpu, percentiles_ms


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
        self.meter_values_answered = 0  # CALLRESULTs to our MeterValues, warm-up and drain included
        self.bad_frames = 0
        self.reader_errors = 0
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
                elapsed = time.perf_counter() - t0
                lat[action].append(elapsed)
                lat["all_calls"].append(elapsed)
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
        wall_end = time.time()
        cpu1, gen_cpu1, machine1 = (
            self._server_cpu(),
            procstat.cpu_seconds(os.getpid()),
            procstat.machine_times(),
        )
        calls = len(lat["all_calls"])
        return {
            "seconds": round(seconds, 3),
            # Wall-clock window, to match the server's loop-lag probe (bench.run, gateway.lagprobe).
            "wall_window": [round(wall_end - seconds, 3), round(wall_end, 3)],
            "chargers_ok": sum(results),
            "calls": calls,
            "calls_per_s": round(calls / seconds, 1) if seconds > 0 else None,
            "server_cpu_pct": procstat.cpu_percent(cpu0, cpu1, seconds),
            # A storm near 100% generator CPU measures the generator, not the server.
            "gen_cpu_pct": procstat.cpu_percent(gen_cpu0, gen_cpu1, seconds),
            **procstat.others_percent(machine0, machine1, own_cpu(cpu0, cpu1, gen_cpu0, gen_cpu1), seconds),
            "latency_ms": {a: percentiles_ms(v) for a, v in lat.items()},
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
        to_wall = time.time() - time.perf_counter()
        return {
            "offered_rate": rate,
            "achieved_rate": round(achieved, 1),
            "wall_window": [round(stage.window_start + to_wall, 3), round(stage.window_end + to_wall, 3)],
            "scheduled": stage.scheduled,
            "measured": len(stage.latencies),
            "latency_ms": percentiles_ms(stage.latencies),
            "rtt_ms": percentiles_ms(stage.rtts),
            "errors": dict(stage.errors),
            "error_total": error_total,
            "unfinished": unfinished,
            "server_cpu_pct": procstat.cpu_percent(srv_cpu0, srv_cpu1, window),
            "gen_cpu_pct": procstat.cpu_percent(gen_cpu0, gen_cpu1, window),
            "server_rss_kib": self._server_rss(),
            **procstat.others_percent(
                machine0, machine1, own_cpu(srv_cpu0, srv_cpu1, gen_cpu0, gen_cpu1), window
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
        errors_total += teardown["failures"] + self.reader_errors
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
                "meter_values_answered": self.meter_values_answered,
                "bad_frames": self.bad_frames,
                "reader_errors": self.reader_errors,
                "server_calls": dict(self.server_calls),
            },
            "errors_total": errors_total,
        }


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
        help="generator GC after the storm: freeze the fleet so it is not rescanned (default),"
        " off = freeze and disable, default = leave it alone",
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
