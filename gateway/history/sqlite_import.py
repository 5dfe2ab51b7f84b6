"""`sqlite_utils`, imported without numpy and pandas.

sqlite_utils (db.py) imports numpy and pandas when they are installed, only to map their column
types; the gateway stores neither. Importing numpy took 0.13-0.18 s of every start on the
project machine, a sixth of the time a restarted gateway has to open its OCPP port
(docs/benchmarks.md, "Restart"). They are hidden while sqlite_utils is imported: `import numpy`
fails then, and sqlite_utils goes without (its `except ImportError`). A module another part
already imported stays as it is.
"""

from __future__ import annotations

import sys

_hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
for _name in _hidden:
    sys.modules[_name] = None  # type: ignore[assignment]  # "import numpy" raises ImportError
try:
    import sqlite_utils
finally:
    for _name in _hidden:
        if sys.modules.get(_name, 0) is None:
            del sys.modules[_name]

__all__ = ["sqlite_utils"]
