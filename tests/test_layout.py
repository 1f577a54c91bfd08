"""The layout's rules (README, Layout): which package may import which, no import cycles, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 450
MAX_ROOT_MODULES = 8
# Only these tie Dagster in; everything else in pipelines/ runs without it.
DAGSTER_ALLOWED = ("pipelines.definitions", "pipelines.resources", "pipelines.cli")
# Only these reach the Dagster layer in assets/ (the code location, and the CLI that executes its jobs).
ASSETS_ALLOWED = ("pipelines.definitions", "pipelines.cli")
# The engine and the normalizer know nothing of Dagster, DuckDB or the warehouse and what is built on it.
PURE_PACKAGES = ("pipelines.stripe_fc", "pipelines.normalize")
PURE_MAY_IMPORT = ("pipelines.stripe_fc", "pipelines.normalize", "pipelines.contract.tables",
                   "pipelines.contract.values", "pipelines.contract.schema", "pipelines.redact", "pipelines.settings",
                   "pipelines.sql")
PURE_FORBIDDEN_THIRD_PARTY = ("dagster", "duckdb")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((REPO / package).rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module an import statement names, at any depth (a function-level import is an import too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
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
                        cycles.append(sorted(component))
    return cycles


def _graph() -> dict[str, set[str]]:
    modules = _modules("pipelines") | _modules("assets")
    return {name: {i for i in _imports(path) if i in modules and i != name} for name, path in modules.items()}


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert find_cycles(_graph()) == []


def test_only_the_tie_modules_import_dagster_or_assets() -> None:
    wrong = []
    for name, path in _modules("pipelines").items():
        for imported in _imports(path):
            if _within(imported, ("dagster",)) and not _within(name, DAGSTER_ALLOWED):
                wrong.append(f"{name} imports {imported}")
            if _within(imported, ("assets",)) and not _within(name, ASSETS_ALLOWED):
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_engine_and_normalizer_know_no_dagster_or_warehouse(package: str) -> None:
    wrong = []
    for name, path in _modules(package.replace(".", "/")).items():
        for imported in _imports(path):
            top = imported.split(".")[0]
            ours = top in ("pipelines", "assets")
            if top in PURE_FORBIDDEN_THIRD_PARTY or (ours and not _within(imported, PURE_MAY_IMPORT)):
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_modules_stay_small_and_the_root_stays_thin() -> None:
    too_long = {name: n for name, path in (_modules("pipelines") | _modules("assets")).items()
                if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert too_long == {}
    root = [p.name for p in (REPO / "pipelines").glob("*.py") if p.name != "__init__.py"]
    assert len(root) <= MAX_ROOT_MODULES, sorted(root)


def test_every_package_says_its_job() -> None:
    silent = [str(p.relative_to(REPO)) for p in (REPO / "pipelines").rglob("__init__.py")
              if p.parent != REPO / "pipelines" and not ast.get_docstring(ast.parse(p.read_text()))]
    assert silent == []
