"""The product's packages import one another one way: declared layers, no module cycle."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Collection
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Which product package may import which (besides itself), bottom floor first. A package missing
# from a value may not be imported by that package; a new package must be placed here.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "protocol": frozenset(),
    "handover": frozenset(),
    "storage": frozenset({"protocol", "handover"}),
    "analysis": frozenset({"protocol"}),
    "recorder": frozenset({"protocol", "handover", "storage"}),
    "proxy": frozenset({"protocol", "handover"}),
    "dashboard": frozenset({"protocol", "analysis", "storage", "handover"}),
    "simulator": frozenset(),
    "deploy": frozenset(),
    "rtrec": frozenset(
        {
            "protocol",
            "handover",
            "storage",
            "analysis",
            "recorder",
            "proxy",
            "dashboard",
            "simulator",
        }
    ),
}
# Libraries a floor must not load: the ground floor stays pure; the relay stays light.
MAY_NOT_USE: dict[str, frozenset[str]] = {
    "protocol": frozenset({"mitmproxy", "sqlalchemy", "streamlit", "prometheus_client"}),
    "analysis": frozenset({"mitmproxy", "sqlalchemy", "streamlit", "prometheus_client"}),
    "handover": frozenset({"mitmproxy", "sqlalchemy", "streamlit", "prometheus_client"}),
    "proxy": frozenset({"sqlalchemy", "streamlit", "prometheus_client", "alembic"}),
    "storage": frozenset({"mitmproxy", "streamlit"}),
}


def imported_names(tree: ast.AST, module: str) -> set[str]:
    """Every dotted name an import statement of ``module`` names (`from a import b` gives `a.b`,
    or `a` when `b` is not a module: see `import_graph`), relative ones made absolute, including
    imports inside functions and under ``if TYPE_CHECKING:``."""
    names: set[str] = set()
    package = module.rsplit(".", 1)[0] if "." in module else module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            dotted = ".".join(part for part in (base, node.module or "") if part)
            names.update(f"{dotted}:{alias.name}" for alias in node.names)
    return names


def product_modules(root: Path, packages: set[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the product packages under ``root``."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def resolve(name: str, modules: Collection[str]) -> str | None:
    """The product module an imported name lands in: `a.b:c` is module `a.b.c` if there is one,
    else `a.b`; a plain dotted name is its longest prefix that is a module."""
    dotted, _, attribute = name.partition(":")
    if attribute and f"{dotted}.{attribute}" in modules:
        return f"{dotted}.{attribute}"
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def import_graph(root: Path, packages: set[str]) -> dict[str, set[str]]:
    """Module -> the product modules it imports."""
    modules = product_modules(root, packages)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        names = imported_names(ast.parse(path.read_text(encoding="utf-8")), module)
        found = {resolve(name, modules) for name in names}
        graph[module] = {target for target in found if target is not None} - {module}
    return graph


def layer_violations(graph: dict[str, set[str]], rules: dict[str, frozenset[str]]) -> list[str]:
    """`a.b -> c.d` for every import from one package into another the rules do not allow."""
    found = []
    for module, imported in sorted(graph.items()):
        package = module.split(".")[0]
        for target in sorted(imported):
            other = target.split(".")[0]
            if other != package and other not in rules.get(package, frozenset()):
                found.append(f"{module} -> {target}")
    return found


def library_violations(root: Path, rules: dict[str, frozenset[str]]) -> list[str]:
    found = []
    for module, path in product_modules(root, set(rules)).items():
        names = imported_names(ast.parse(path.read_text(encoding="utf-8")), module)
        banned = rules[module.split(".")[0]]
        roots = {name.partition(":")[0].split(".")[0] for name in names}
        found += [f"{module} -> {root}" for root in sorted(roots & banned)]
    return found


def test_every_product_package_is_placed_in_the_layers() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"tests", "benchmarks"} == set(MAY_IMPORT)


def test_packages_import_only_the_floors_below_them() -> None:
    assert layer_violations(import_graph(ROOT, set(MAY_IMPORT)), MAY_IMPORT) == []


def test_the_product_has_no_import_cycle() -> None:
    graphlib.TopologicalSorter(import_graph(ROOT, set(MAY_IMPORT))).prepare()


def test_ground_floor_and_relay_load_no_heavy_library() -> None:
    assert library_violations(ROOT, MAY_NOT_USE) == []


def test_an_upward_import_and_a_cycle_are_caught(tmp_path: Path) -> None:
    for package, body in {
        "low": "from high import app\n",
        "high": "",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "app.py").write_text(body)
    (tmp_path / "high" / "app.py").write_text("from low.app import x\n")
    graph = import_graph(tmp_path, {"low", "high"})
    assert layer_violations(graph, {"low": frozenset(), "high": frozenset({"low"})}) == [
        "low.app -> high.app"
    ]
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()
