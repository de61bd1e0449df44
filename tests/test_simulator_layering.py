"""The simulator's modules import one another one way: the import graph has no cycle."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SIMULATOR = Path(__file__).resolve().parent.parent / "simulator"


def imported_siblings(node: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The modules of ``package`` that one import statement names, absolute or relative."""
    if isinstance(node, ast.Import):
        dotted = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = package if node.level else ""  # `from . import x`, `from .x import y`
        module = ".".join(part for part in (base, node.module or "") if part)
        dotted = [module, *(f"{module}.{alias.name}" for alias in node.names)]
    else:
        return set()
    parts = [name.split(".") for name in dotted]
    return {p[1] for p in parts if len(p) > 1 and p[0] == package and p[1] in modules}


def sibling_imports(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` and the sibling modules it imports, including the imports
    under ``if TYPE_CHECKING:`` (a cycle hidden from the interpreter is still a cycle)."""
    modules = {path.stem for path in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found |= imported_siblings(node, package.name, modules)
        graph[path.stem] = found - {path.stem}
    return graph


def test_simulator_module_imports_form_no_cycle() -> None:
    graph = sibling_imports(SIMULATOR)
    assert {"connection", "generate", "turns", "responses", "state"} <= graph.keys()
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_import_walk_finds_a_cycle_through_relative_and_type_checking_imports(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import run\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    (package / "c.py").write_text("from . import a\nimport pkg.b\n")
    graph = sibling_imports(package)
    assert graph == {"__init__": set(), "a": {"b"}, "b": {"a"}, "c": {"a", "b"}}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()
