"""How long the garbage collector's steps stall the loop with a large site's heap (issue 17).

`gateway.gc_policy` freezes what lives on; its hourly step used to release the frozen set and
collect it all at once. That walk is proportional to the number of tracked objects, so this
builds a heap of `--objects` container objects shaped like the gateway's (small dicts and lists
referring to each other, some in cycles, a few cyclic garbage), freezes it as the policy does,
then times each step: the old hourly full collection, the policy's young collection and freeze,
and its tick when the hourly step is due. The real gateway's frozen count per charger is in the
benchmark's loop-lag lines (`frozen`); pass chargers x that as --objects.

    python -m bench.gc_stall --objects 3000000
"""

from __future__ import annotations

import argparse
import gc
import json
import time

from gateway.gc_policy import GcPolicy


def build_heap(objects: int) -> list[object]:
    """`objects` tracked containers: (dict, list) pairs, each pair a cycle."""
    heap: list[object] = []
    for i in range(objects // 2):
        item: dict[str, object] = {"n": i}
        item["self"] = [item]
        heap.append(item)
    return heap


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return round((time.perf_counter() - started) * 1000.0, 1)


def old_hourly_step() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=3_000_000)
    args = parser.parse_args()
    heap = build_heap(args.objects)  # noqa: F841 (kept alive)
    policy = GcPolicy(freeze_every_s=2.0)
    policy.start(now=0.0)
    result = {"objects": args.objects, "frozen": gc.get_freeze_count(),
              "old_hourly_full_ms": timed(old_hourly_step)}
    for _ in range(2000):  # a little young cyclic garbage, as closed handshakes leave
        cycle: list[object] = []
        cycle.append(cycle)
    result["policy_freeze_tick_ms"] = timed(lambda: policy.tick(now=2.0))
    result["policy_hourly_tick_ms"] = timed(lambda: policy.tick(now=3602.0))
    gc.unfreeze()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
