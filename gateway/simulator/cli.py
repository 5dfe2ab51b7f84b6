"""`simulate` subcommand: run one or more simulated chargers against a central system.

The lead wires `register` into the `ocpp-gateway` command line; `python -m gateway.simulator`
runs it on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys

from .profile import PROFILE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `simulate` to an argparse subparsers object; the parsed args carry `func`."""
    p = subparsers.add_parser("simulate", help="run simulated chargers (one line per event)",
                              description="Connect simulated chargers modelled on the vendor manuals.")
    p.add_argument("--url", default="ws://127.0.0.1:8887/ocpp", help="central system endpoint; /<id> is appended")
    p.add_argument("--id", default="CP1", dest="charger_id", help="charge point identity")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="generic")
    p.add_argument("--count", type=int, default=1,
                   help="number of chargers: CP1 -> CP1..CPN, an id without a final number -> ID-1..ID-N")
    p.add_argument("--password", help="HTTP Basic authorization key (username = charger id); "
                                      "`ocpp-gateway simulate` defaults to the site password of the "
                                      "gateway on this machine (same --config)")
    p.add_argument("--session", action="store_true", help="start a charging session on connector 1 after boot")
    p.add_argument("--id-tag", default="SIMTAG", help="id tag for --session")
    p.add_argument("--duration", type=float, help="stop after S seconds (default: until Ctrl-C)")
    p.add_argument("--meter-interval", type=int, help="override MeterValueSampleInterval (seconds)")
    p.set_defaults(func=run)


def charger_ids(base: str, count: int) -> list[str]:
    if count <= 1:
        return [base]
    match = re.fullmatch(r"(.*?)(\d+)", base)
    if match:
        prefix, first = match.group(1), int(match.group(2))
        return [f"{prefix}{first + i}" for i in range(count)]
    return [f"{base}-{i}" for i in range(1, count + 1)]


async def simulate(args: argparse.Namespace) -> int:
    from .simulator import Simulator  # here: `ocpp-gateway run` imports this module too
    sims = [Simulator(args.profile, cid, args.url, args.password, meter_loop=True,
                      on_event=lambda line: print(line, flush=True))
            for cid in charger_ids(args.charger_id, args.count)]
    for sim in sims:
        if args.meter_interval is not None:
            sim.config.set_internal(sim.profile.quirks.meter_interval_key, str(args.meter_interval))
    try:
        await asyncio.gather(*(sim.start(timeout=3600) for sim in sims))
        if args.session:
            await asyncio.gather(*(sim.start_session(1, args.id_tag) for sim in sims))
        if args.duration is not None:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Future()
    finally:
        for sim in sims:
            with contextlib.suppress(Exception):
                if args.session and sim.online():
                    await sim.stop_session(1, "Local")
            await sim.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(simulate(args))
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["simulate"]:
        argv = ["simulate", *argv]
    args = parser.parse_args(argv)
    return args.func(args)
