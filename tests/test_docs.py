"""The documentation keeps up with the code."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import settings_reference

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [key for key, _type, _default in settings_reference() if f"`{key}`" not in text]
    assert missing == []


def test_readme_keeps_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert "python3 -m pip install . && ocpp-gateway run" in text
    assert "python3 -m pip install '.[test]' && python3 -m pytest" in text
    assert "python3 -m pytest -q -p no:cacheprovider" in (ROOT / ".ci" / "run").read_text()
