"""The model and the policies import no I/O library (style guide: a core without I/O)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_LIBRARIES = {"websockets", "ocpp", "BAC0", "bacpypes3", "pymodbus", "sqlite_utils", "sqlite3",
                "aiohttp", "asyncio"}
PURE_MODULES = ["gateway/model/station.py", "gateway/model/authorize.py", "gateway/ocpp/summaries.py",
                "gateway/model/timestamps.py"]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_core_module_imports_no_io_library(module):
    tree = ast.parse((ROOT / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & IO_LIBRARIES == set()
