"""Niagara 5.1 "Filter System Logs By Name": debug output for one charger only."""

from __future__ import annotations

import logging


class ChargerFilter(logging.Filter):
    """Pass records that mention the charger id, and every warning or worse."""

    def __init__(self, charger_id: str) -> None:
        super().__init__()
        self.charger_id = charger_id

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or self.charger_id in record.getMessage()


def install_charger_filter(charger_id: str) -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(ChargerFilter(charger_id))


def set_charger_filter(charger_id: str) -> None:
    """Replace the filter while running (a live setting): empty shows every charger again."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, ChargerFilter)]:
            handler.removeFilter(old)
    if charger_id:
        install_charger_filter(charger_id)
