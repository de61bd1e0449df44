"""The simulator's modules import one another one way: the import graph has no cycle."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SIMULATOR = Path(__file__).resolve().parent.parent / "simulator"


def sibling_imports(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` and the sibling modules it imports, including the imports
    under ``if TYPE_CHECKING:`` (a cycle hidden from the interpreter is still a cycle)."""
    name = package.name
    modules = {path.stem for path in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(name + ".")}
            elif isinstance(node, ast.ImportFrom) and node.module == name:
                found |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(name + "."):
                found.add((node.module or "").split(".")[1])
        graph[path.stem] = found - {path.stem}
    return graph


def test_simulator_module_imports_form_no_cycle() -> None:
    graph = sibling_imports(SIMULATOR)
    assert {"connection", "generate", "turns", "responses"} <= graph.keys()
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_import_walk_finds_a_cycle_hidden_behind_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import run\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    graph = sibling_imports(package)
    assert graph["a"] == {"b"}
    assert graph["b"] == {"a"}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()
