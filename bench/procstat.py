"""Read a process's RSS and CPU time from /proc, so the harness needs no psutil.

Linux only; every reader returns None when /proc is unavailable, and the JSON then
carries nulls instead of failing a run that is otherwise valid.
"""

from __future__ import annotations

import os

from gateway import memtrim

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def rss_kib(pid: int) -> int | None:
    """Return VmRSS of `pid` in KiB (the figure the notes' KiB/charger is based on)."""
    return memtrim.rss_kib(pid)


def cpu_seconds(pid: int) -> float | None:
    """Return user + system CPU seconds of `pid`, all its threads included."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(")") + 2 :].split()
    try:
        # utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the name.
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (ValueError, IndexError):
        return None


def cpu_percent(start: float | None, end: float | None, wall_s: float) -> float | None:
    """CPU use over a wall-clock interval, 100 = one core busy.

    None for intervals under 0.5 s: /proc counts in clock ticks (10 ms), too coarse there.
    """
    if start is None or end is None or wall_s < 0.5:
        return None
    return round((end - start) / wall_s * 100.0, 1)


def machine_times() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat.

    Busy minus the server's and the generator's CPU is what other programs used: on a
    shared machine, a latency tail next to a large share of it is not the server's fault.
    Steal is time a hypervisor gave our vCPUs to another guest.
    """
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user/nice)
    values += [0] * (8 - len(values))
    busy = sum(values[:8]) - values[3] - values[4]
    return busy / CLOCK_TICKS, values[7] / CLOCK_TICKS


def others_percent(
    machine0: tuple[float, float] | None,
    machine1: tuple[float, float] | None,
    own_cpu_s: float | None,
    wall_s: float,
) -> dict[str, float | None]:
    """CPU used by everything but the server and the generator, and steal; 100 = one core."""
    if machine0 is None or machine1 is None or wall_s < 0.5:
        return {"others_cpu_pct": None, "steal_pct": None}
    busy = machine1[0] - machine0[0]
    others = busy - own_cpu_s if own_cpu_s is not None else None
    return {
        "others_cpu_pct": round(max(0.0, others) / wall_s * 100.0, 1) if others is not None else None,
        "steal_pct": round((machine1[1] - machine0[1]) / wall_s * 100.0, 1),
    }
