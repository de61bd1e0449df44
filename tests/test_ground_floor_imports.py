"""`protocol/` and `analysis/` import nothing above them, nor mitmproxy, streamlit, sqlalchemy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABOVE = {"proxy", "recorder", "handover", "storage", "dashboard", "rtrec", "simulator"}
FRAMEWORKS = {"mitmproxy", "streamlit", "sqlalchemy", "prometheus_client", "pandas"}
# What each ground-floor package may import of the product besides itself.
ALLOWED = {"protocol": set(), "analysis": {"protocol"}}


def imported_top_levels(source: str) -> set[str]:
    """The top-level names of every absolute import in `source`, nested ones included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_ground_floor_package_imports_nothing_above_it(package: str) -> None:
    forbidden = (ABOVE | FRAMEWORKS | set(ALLOWED)) - ALLOWED[package] - {package}
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules
        for name in imported_top_levels(path.read_text(encoding="utf-8")) & forbidden
    }
    assert wrong == set()


def test_the_walk_sees_nested_and_from_imports() -> None:
    source = "import storage.db\ndef f():\n    from dashboard import ui\nfrom . import x\n"
    assert imported_top_levels(source) == {"storage", "dashboard"}
