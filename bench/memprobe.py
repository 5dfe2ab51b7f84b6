"""Where a gateway's memory is: the gateway run with a probe that writes a breakdown on SIGUSR1.

``python -m bench.memprobe OUT.jsonl [--tracemalloc] -- <gateway arguments>`` runs
``gateway.main`` with those arguments; each SIGUSR1 appends one JSON line to OUT.jsonl:
RSS by kind of mapping (the main heap, anonymous mappings: thread arenas, pymalloc arenas and
mmapped blocks, files), glibc's own counts (`mallinfo2`: bytes in use, bytes free but kept),
SQLite's (memory in use, page cache), pymalloc's arenas, the gateway's per-charger tables, and
with ``--tracemalloc`` the Python allocations that grew most since the first line, with
``--cycles`` what only reference cycles kept (a full collection; it frees them, so it changes
what it measures: for finding cycles, not for the figures).
`bench.hostile --probe` uses it to say what the RSS after the hostile load is made of
(docs/reliability.md). For benchmarks only; tracemalloc slows the gateway about twofold.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import re
import runpy
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from typing import Any

MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                    "fordblks", "keepcost")
SQLITE_STATUS_MEMORY_USED, SQLITE_STATUS_PAGECACHE_OVERFLOW = 0, 2
# Objects whose count per class says whether state of gone connections stays.
COUNTED_CLASSES = ("ChargerSession", "OcppConnection", "ServerProtocol", "Station", "_Window", "Exchange",
                   "Unit", "Future", "Task")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS]


def smaps_by_kind(pid: int | str = "self") -> dict[str, int]:
    """KiB resident per kind of mapping: heap, anonymous (thread arenas, mmapped blocks, pymalloc
    arenas), stack, files."""
    kinds: Counter[str] = Counter()
    kind = "other"
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as f:
            for line in f:
                head = line.split(None, 6)
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    name = head[5].strip() if len(head) > 5 else ""
                    kind = ("heap" if name == "[heap]" else "anonymous" if not name
                            else "stack" if name.startswith("[stack") else "other" if name.startswith("[")
                            else "files")
                elif head[0] == "Rss:":
                    kinds[kind] += int(head[1])
    except OSError:
        return {}
    return dict(kinds)


def mallinfo() -> dict[str, int]:
    """glibc's counts over all arenas (empty off glibc): uordblks in use, fordblks free but kept."""
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    info = fn()
    return {name: getattr(info, name) for name in MALLINFO2_FIELDS}


def sqlite_memory() -> dict[str, int]:
    """The SQLite library's own counts (the same library the sqlite3 module uses)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return {}
    lib = ctypes.CDLL(name)
    now, high = ctypes.c_int64(), ctypes.c_int64()
    out = {}
    for label, op in (("memory_used", SQLITE_STATUS_MEMORY_USED), ("page_cache", SQLITE_STATUS_PAGECACHE_OVERFLOW)):
        lib.sqlite3_status64(op, ctypes.byref(now), ctypes.byref(high), 0)
        out[label], out[label + "_highwater"] = now.value, high.value
    return out


def pymalloc_arenas() -> dict[str, int]:
    """pymalloc's totals from `sys._debugmallocstats` (written by C to fd 2, so taken from there)."""
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("ascii", "replace")
    wanted = {"# arenas allocated current": "arenas", "# bytes in allocated blocks": "bytes_in_blocks",
              "# bytes in available blocks": "bytes_free_in_pools", "Total": "arena_bytes"}
    out = {}
    for line in text.splitlines():
        label, _, value = line.rpartition("=")
        for prefix, key in wanted.items():
            if label.strip().startswith(prefix) and key not in out:
                out[key] = int(value.strip().replace(",", ""))
    return out


def gateway_tables() -> dict[str, Any]:
    """Objects per class of the gateway's per-connection state, and the per-charger tables' sizes."""
    gc.unfreeze()  # frozen objects are not in get_objects(); the GC policy freezes again soon
    try:
        objects = gc.get_objects()
        counts = Counter(type(o).__name__ for o in objects)
        tables: Counter[str] = Counter()
        trims: dict[str, Any] = {}
        for o in objects:
            name = type(o).__name__
            if name == "HeapTrim":
                trims = {"trims": o.trims, "last_trim_ms": o.last_trim_ms}
            if name in ("LogBudget", "MeterBudget", "OrphanStops", "Connections", "Registry", "LoginGuard"):
                for attr, value in vars(o).items() if hasattr(o, "__dict__") else ():
                    if isinstance(value, dict | list | set):
                        tables[f"{name}.{attr}"] += len(value)
    finally:
        gc.freeze()
    return {"objects": {c: counts[c] for c in COUNTED_CLASSES}, "tables": dict(tables), "heap_trim": trims,
            "gc_tracked_objects": len(objects)}


def cycles() -> dict[str, int]:
    """Objects only reference cycles keep (found by a full collection, frozen ones too), by class."""
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.freeze()
    return dict(found.most_common(20))


class Probe:
    def __init__(self, out_path: str, trace: bool, find_cycles: bool) -> None:
        self.out_path = out_path
        self.trace = trace
        self.find_cycles = find_cycles
        self.first: tracemalloc.Snapshot | None = None

    def dump(self, *_: Any) -> None:
        line: dict[str, Any] = {"t": time.time(), "smaps_kib": smaps_by_kind(), "mallinfo2": mallinfo(),
                                "sqlite": sqlite_memory(), "pymalloc": pymalloc_arenas(),
                                "allocated_blocks": sys.getallocatedblocks(), **gateway_tables()}
        if self.trace:
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            line["traced_bytes"] = tracemalloc.get_traced_memory()[0]
            if self.first is None:
                self.first = snap
            else:
                line["grew_most"] = [[str(s.traceback), s.size_diff, s.count_diff]
                                     for s in snap.compare_to(self.first, "lineno")[:15]]
        if self.find_cycles:
            line["cycles"] = cycles()
        if self.find_cycles:
            line["cycles"] = cycles()
        with open(self.out_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def main() -> None:
    args = sys.argv[1:]
    out_path, rest = args[0], args[1:]
    options = rest[: rest.index("--")]
    trace, find_cycles = "--tracemalloc" in options, "--cycles" in options
    gateway_args = rest[rest.index("--") + 1:]
    if trace:
        tracemalloc.start(1)
    signal.signal(signal.SIGUSR1, Probe(out_path, trace, find_cycles).dump)
    sys.argv = ["gateway.main", *gateway_args]
    with contextlib.suppress(SystemExit):
        runpy.run_module("gateway.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
