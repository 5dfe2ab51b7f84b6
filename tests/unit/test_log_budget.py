"""The per-charger general-log budget on a plain object with an injected clock (issue 12)."""

from __future__ import annotations

from gateway.ocpp.logbudget import LogBudget, OrphanStops


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lines_past_the_budget_are_counted_and_reported_the_next_minute():
    clock = Clock()
    budget = LogBudget(100, clock)
    assert budget.admit("CP1", 60) == (True, [])
    keep, [note] = budget.admit("CP1", 60)
    assert not keep and "over the general-log budget of 100 bytes" in note
    assert budget.admit("CP1", 60) == (False, [])  # one note a minute, not one per line
    assert budget.admit("CP2", 60) == (True, [])  # another charger has its own budget
    clock.now += 60
    keep, [summary] = budget.admit("CP1", 10)
    assert keep and summary.startswith("2 line(s), 120 bytes of general log not kept")


def test_transaction_lines_are_always_kept_and_still_count():
    budget = LogBudget(100, Clock())
    assert budget.admit("CP1", 500, essential=True) == (True, [])
    keep, _notes = budget.admit("CP1", 1)
    assert not keep


class Lines:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def log(self, identifier: str, message_type: str, message: str, level: str = "info") -> None:
        self.rows.append((identifier, message_type, message, level))


def test_a_written_line_is_cut_with_its_size_and_an_invented_event_name_is_cut_too():
    lines = Lines()
    budget = LogBudget(10_000, Clock(), line_max_chars=10)
    assert budget.write(lines, "CP1", "X" * 500 + "Error", "é" * 100, "warning")
    [(cid, event, text, level)] = lines.rows
    assert text == "é" * 10 + "…(200 bytes)" and len(event) == 65 and level == "warning"


def test_the_meter_budget_allows_an_hour_at_once_then_refills_over_the_hour():
    from gateway.ocpp.logbudget import MeterBudget
    clock = Clock()
    budget = MeterBudget(3600, clock)
    assert budget.admit("CP1", 3000)  # a queue sent after an outage: an hour's worth at once
    assert not budget.admit("CP1", 700) and budget.refused == 1  # refused: nothing spent
    assert budget.admit("CP1", 600)
    assert budget.admit("CP2", 3600)  # another charger has its own
    clock.now += 100  # 1 byte a second
    assert not budget.admit("CP1", 101)
    assert budget.admit("CP1", 100)
    clock.now += 10 * 3600  # never more than an hour's worth saved up
    assert not budget.admit("CP1", 3601)


def test_orphan_stops_past_the_budget_are_counted_in_one_line_a_minute():
    now = [0.0]
    orphans = OrphanStops(2, lambda: now[0])
    for _ in range(2):
        assert orphans.may_store("CP1")
        orphans.stored("CP1")
    assert not orphans.may_store("CP1") and orphans.may_store("CP2")
    notes = [orphans.not_stored("CP1") for _ in range(5)]
    assert notes[0] is not None and "budget of 2 orphan stops an hour" in notes[0]
    assert notes[1:] == [None] * 4
    now[0] = 61.0
    note = orphans.not_stored("CP1")
    assert note is not None and "4 more in the minute before" in note
    assert orphans.refused_by == {"CP1": 6}
    now[0] = 61.0 + 1800.0  # half an hour refills one row of two an hour
    assert orphans.may_store("CP1")


def test_stale_windows_are_forgotten_at_most_once_a_minute_with_thousands_of_chargers():
    """Past 4,096 chargers the stale windows are dropped, but not by looking at every charger on
    each new charger's first line (a 10,000-charger storm made that quadratic)."""
    now = [0.0]
    budget = LogBudget(1000, lambda: now[0])
    for i in range(5000):
        budget.admit(f"OLD{i}", 10)
    now[0] = 200.0  # every window is now stale
    budget.admit("NEW0", 10)
    assert len(budget._windows) == 1  # pruned on the first new window
    for i in range(5000):
        budget.admit(f"NEW{i}", 10)
    now[0] = 230.0  # within the same minute: no second look at every charger
    budget.admit("LATE", 10)
    assert len(budget._windows) == 5001
    now[0] = 400.0
    budget.admit("AFTER", 10)
    assert list(budget._windows) == ["AFTER"]
