"""The house's rule, read from the imports of every module (imports inside functions too):

- the layers go one way: `schemas` < `domain` < `queries` < `runtime` < `ingest_api`,
  `processors` < `coalmine` (the shell: CLI, launcher, client commands); nothing imports a
  layer above its own, so nothing below imports the shell;
- `ingest_api` and `processors` never import each other, and in `processors` the worker's
  agents and the store's sinks never import each other (two processes);
- `domain` does no I/O: it imports only itself, `schemas`, msgspec, cronsim and the standard
  library without its I/O modules;
- the packages import each other in no cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS = {
    "schemas": 0,
    "domain": 1,
    "queries": 2,
    "runtime": 3,
    "ingest_api": 4,
    "processors": 4,
    "dashboards": 4,
    "coalmine": 5,
}
APART = [("ingest_api", "processors"), ("processors.agents", "processors.sinks")]
DOMAIN_MAY_USE = {"domain", "schemas", "msgspec", "cronsim"}
IO_MODULES = {
    "asyncio", "http", "io", "logging", "multiprocessing", "os", "pathlib", "select",
    "selectors", "shutil", "signal", "smtplib", "socket", "sqlite3", "ssl", "subprocess",
    "sys", "tempfile", "threading", "urllib",
}  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[".".join(path.relative_to(ROOT).with_suffix("").parts)] = path
    return found


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
            names.add(node.module)
    return names


def unit(module: str) -> str:
    """The part of the house a module belongs to: its package, or its process in processors."""
    parts = module.split(".")
    if parts[0] == "processors" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


def edges() -> set[tuple[str, str, str, str]]:
    """(importing unit, imported unit, importing module, imported name) across units."""
    found = set()
    for module, path in modules().items():
        for name in imports(path):
            if name.split(".")[0] in LAYERS and unit(name) != unit(module):
                found.add((unit(module), unit(name), module, name))
    return found


def test_no_package_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{module} imports {name}"
        for src, dst, module, name in edges()
        if LAYERS[dst.split(".")[0]] > LAYERS[src.split(".")[0]]
    ]
    assert not upward


def test_the_api_and_the_processors_and_the_worker_and_the_store_stay_apart() -> None:
    def within(unit_name: str, side: str) -> bool:
        return unit_name == side or unit_name.startswith(side + ".")

    crossing = [
        f"{module} imports {name}"
        for src, dst, module, name in edges()
        for a, b in APART
        if (within(src, a) and within(dst, b)) or (within(src, b) and within(dst, a))
    ]
    assert not crossing


def test_the_domain_does_no_io() -> None:
    impure = []
    for module, path in modules().items():
        if unit(module) != "domain":
            continue
        for name in imports(path):
            top = name.split(".")[0]
            if top == "__future__":
                continue
            stdlib = top in sys.stdlib_module_names
            if top in IO_MODULES or not (stdlib or top in DOMAIN_MAY_USE):
                impure.append(f"{module} imports {name}")
    assert not impure


def test_the_packages_import_each_other_in_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for src, dst, _, _ in edges():
        graph.setdefault(src, set()).add(dst)
    done: set[str] = set()

    def cycle_from(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = cycle_from(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        assert cycle_from(start, []) is None


def test_the_rule_sees_the_whole_house() -> None:
    """The checks above read real modules: a rename that hid a package would pass them."""
    units = {unit(module) for module in modules()}
    assert {"domain", "runtime", "processors.agents", "processors.sinks", "coalmine"} <= units
    assert ("ingest_api", "runtime") in {(src, dst) for src, dst, _, _ in edges()}
