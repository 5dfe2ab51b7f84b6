"""The documentation keeps up with the code."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import settings_reference

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [key for key, _type, _default in settings_reference() if f"`{key}`" not in text]
    assert missing == []


def test_readme_keeps_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert "python3 -m pip install . && ocpp-gateway run" in text
    assert "python3 -m pip install '.[test]' && python3 -m pytest" in text
    assert "python3 -m pytest -q -p no:cacheprovider" in (ROOT / ".ci" / "run").read_text()


def test_every_live_setting_is_documented_as_live():
    from gateway.operator.live import LIVE_SETTINGS
    text = (ROOT / "docs" / "configuration.md").read_text()
    live_part = text[text.index("## Live settings"):text.index("## [ocpp]")]
    assert [key for key in LIVE_SETTINGS if f"`{key}`" not in live_part] == []


def test_the_quick_start_adds_the_charger_it_simulates_with_the_short_interval_first():
    import re
    text = (ROOT / "docs" / "quickstart.md").read_text()
    simulated = re.search(r"simulate .*--id (\S+)", text).group(1)
    added = re.search(r"devices add (\S+)", text).group(1)
    assert simulated == added
    assert text.index("guest_reconnect_interval_s=10") < text.index("ocpp-gateway simulate")


def test_every_web_page_has_a_screenshot():
    text = (ROOT / "docs" / "web-ui.md").read_text()
    for name in re.findall(r"\(screenshots/([\w-]+\.png)\)", text):
        assert (ROOT / "docs" / "screenshots" / name).stat().st_size < 200_000, name
