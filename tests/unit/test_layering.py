"""The house holds its shape: each room imports only what it may, and no import goes round in a circle.

One table says, for each room (a package or module prefix), which libraries and which of our own
rooms it must not import. The whole import graph of `gateway/` and `points/` is read from the code
(function-level imports included: they run too); imports under `if TYPE_CHECKING:` are type hints
only: checked against the table and, in a test of their own, for cycles too. See docs/architecture.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "points")

IO_LIBRARIES = ("asyncio", "websockets", "ocpp", "BAC0", "bacpypes3", "pymodbus", "sqlite3",
                "sqlite_utils", "aiohttp")
BMS_LIBRARIES = ("BAC0", "bacpypes3", "pymodbus")
UPPER_ROOMS = ("gateway.main", "gateway.operator", "points")
# the shared point table and its catalog are protocol-free; each protocol face keeps to itself
POINT_TABLE_FREE_OF = IO_LIBRARIES + ("points.bacnet", "points.modbus", "points.export", "gateway.operator",
                                      "gateway.main")

# room -> what it must not import (a prefix matches the module and everything below it).
# More specific rooms come first; a module is checked against every room it belongs to.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # the live model and the rules: pure, no I/O, no other room of ours
    "gateway.model": IO_LIBRARIES + ("gateway.ocpp", "gateway.history", "gateway.charging",
                                     "gateway.chargers", "gateway.operator", "gateway.main",
                                     "points"),
    # the site-limit allocator and the profile builder decide; the controller does the I/O
    "gateway.charging.allocator": IO_LIBRARIES + UPPER_ROOMS + ("gateway.ocpp", "gateway.history"),
    "gateway.charging.profiles": IO_LIBRARIES + UPPER_ROOMS + ("gateway.ocpp", "gateway.history"),
    "gateway.charging.limit": IO_LIBRARIES + UPPER_ROOMS + ("gateway.ocpp", "gateway.history"),
    "gateway.charging.guard": IO_LIBRARIES + UPPER_ROOMS + ("gateway.ocpp", "gateway.history"),
    "gateway.charging.inputs": IO_LIBRARIES + UPPER_ROOMS + ("gateway.ocpp", "gateway.history"),
    "gateway.charging": BMS_LIBRARIES + ("aiohttp", "websockets") + UPPER_ROOMS,
    "gateway.chargers.quirks": IO_LIBRARIES + UPPER_ROOMS,
    "gateway.chargers": BMS_LIBRARIES + ("aiohttp",) + UPPER_ROOMS + ("gateway.charging",),
    "gateway.ocpp.summaries": IO_LIBRARIES + UPPER_ROOMS,
    "gateway.ocpp": BMS_LIBRARIES + ("aiohttp",) + UPPER_ROOMS + ("gateway.charging",),
    "gateway.history": BMS_LIBRARIES + ("websockets", "aiohttp") + UPPER_ROOMS
                       + ("gateway.ocpp", "gateway.charging", "gateway.chargers"),
    "gateway.settings": IO_LIBRARIES + UPPER_ROOMS,
    "gateway.errors": IO_LIBRARIES + UPPER_ROOMS + ("gateway.",),
    # the simulator is a charger: it shares nothing with the central system
    "gateway.simulator": BMS_LIBRARIES + ("aiohttp", "sqlite3", "sqlite_utils", "points",
                                          "gateway.main", "gateway.model", "gateway.ocpp",
                                          "gateway.history", "gateway.charging", "gateway.chargers",
                                          "gateway.operator"),
    **dict.fromkeys(("points.catalog", "points.catalog_modbus", "points.spec", "points.sources", "points.table",
                     "points.table_values", "points.table_writes"), POINT_TABLE_FREE_OF),
    "points.modbus.codec": IO_LIBRARIES,
    "points.modbus.layout": IO_LIBRARIES,
    "points.modbus.registers": IO_LIBRARIES,
    "points.bacnet": ("pymodbus", "points.modbus", "websockets", "gateway.operator"),
    "points.modbus": ("BAC0", "bacpypes3", "points.bacnet", "websockets", "gateway.operator"),
    "points.export": ("BAC0", "bacpypes3", "pymodbus", "websockets", "points.bacnet", "points.modbus.server"),
}

# Imports the rooms still owe (each entry goes when its module is rewired); the tests below fail
# on any import outside the table that is not listed here.
KNOWN_DEBT: set[tuple[str, str]] = set()
# The composition root builds and wires every part; nothing imports it.
COMPOSITION_ROOT = "gateway.main"


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    type_only: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imports_of(name: str, path: Path, known: Iterable[str]) -> list[Import]:
    """Every import in one file, resolved to a module of ours where it names one."""
    known = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(n) for node in ast.walk(tree)
                 if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                 for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(name, a.name, node.lineno, id(node) in type_only) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append(Import(name, full if full in known else base, node.lineno, id(node) in type_only))
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix if prefix.endswith(".") else prefix + ".")


def violations(imports: Iterable[Import], table: Mapping[str, tuple[str, ...]]) -> list[str]:
    found = []
    for imp in imports:
        for room, forbidden in table.items():
            if within(imp.source, room) and not within(imp.target, room):
                bad = [f for f in forbidden if within(imp.target, f)]
                if bad:
                    found.append(f"{imp.source}:{imp.line} imports {imp.target} (room {room} forbids {bad[0]})")
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def runtime_graph(imports: Iterable[Import], known: Iterable[str], type_hints: bool = False) -> dict[str, set[str]]:
    """Who imports whom among our modules; with `type_hints`, imports under TYPE_CHECKING too."""
    known = set(known)
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in imports:
        if (type_hints or not imp.type_only) and imp.target in known and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    return graph


@pytest.fixture(scope="module")
def all_imports() -> tuple[dict[str, Path], list[Import]]:
    modules = our_modules()
    return modules, [i for name, path in modules.items() for i in imports_of(name, path, modules)]


def owed(imports: list[Import]) -> list[Import]:
    return [i for i in imports if (i.source, i.target) not in KNOWN_DEBT]


def test_every_room_imports_only_what_it_may(all_imports):
    _, imports = all_imports
    assert violations(owed(imports), FORBIDDEN) == []


def test_no_import_goes_round_in_a_circle(all_imports):
    modules, imports = all_imports
    assert cycles(runtime_graph(owed(imports), modules)) == []


def test_no_circle_goes_through_type_hints_either(all_imports):
    """Two modules that need each other's types are one concern split badly: the side that uses
    the other declares a small Protocol of what it uses (e.g. `gateway.ocpp.parts.BootedSession`)."""
    modules, imports = all_imports
    assert cycles(runtime_graph(owed(imports), modules, type_hints=True)) == []


def test_every_known_debt_is_still_real(all_imports):
    """A debt paid off leaves the list, so the list never hides a new import."""
    _, imports = all_imports
    assert KNOWN_DEBT <= {(i.source, i.target) for i in imports}


def test_nothing_imports_the_composition_root(all_imports):
    _, imports = all_imports
    assert [f"{i.source}:{i.line}" for i in imports if within(i.target, COMPOSITION_ROOT)] == []


def test_the_checker_sees_a_forbidden_import_and_a_cycle():
    """The two checks above would fail on a bad graph (so they cannot pass by reading nothing)."""
    bad = [Import("gateway.model.station", "websockets", 3, False),
           Import("gateway.model.station", "gateway.ocpp.session", 4, True),
           Import("gateway.ocpp.session", "gateway.model.station", 5, False),
           Import("gateway.model.station", "gateway.ocpp.session", 6, False)]
    assert len(violations(bad, FORBIDDEN)) == 3
    graph = runtime_graph(bad, {"gateway.model.station", "gateway.ocpp.session"})
    assert cycles(graph) == [["gateway.model.station", "gateway.ocpp.session"]]
    assert cycles(runtime_graph(bad[:3], {"gateway.model.station", "gateway.ocpp.session"})) == []
    assert cycles(runtime_graph(bad[:3], {"gateway.model.station", "gateway.ocpp.session"}, type_hints=True)) == [
        ["gateway.model.station", "gateway.ocpp.session"]]


def test_the_graph_is_read_from_the_code(all_imports):
    modules, imports = all_imports
    assert {"gateway.model.station", "gateway.ocpp.session", "points.table"} <= set(modules)
    assert any(i.source == "gateway.ocpp.session" and i.target == "gateway.model.station" for i in imports)
