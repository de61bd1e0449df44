"""No product module outside `protocol/` spells a Realtime event type: they import its names."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import typing
from functools import cache
from pathlib import Path

import protocol

ROOT = Path(__file__).resolve().parent.parent
# The protocol package names the types; the simulator stays independent of the product on
# purpose (it plays OpenAI); tests, docs and benchmarks are not product modules.
EXEMPT = {"protocol", "simulator", "tests", "docs", "benchmarks"}
SDK_EVENT_PACKAGES = ("openai.types.realtime", "openai.types.beta.realtime", "openai.types.live")


@cache
def sdk_event_types() -> frozenset[str]:
    """The `type` of every event model in the SDK's Realtime (GA, beta) and GPT-Live types.

    Some GA event models lack the `Event` suffix (`ConversationItemAdded`); a dotted `type` is
    an event's wherever it appears, a bare one (`error`) only on an `…Event` model.
    """
    found: set[str] = set()
    for package in SDK_EVENT_PACKAGES:
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            module = importlib.import_module(f"{package}.{info.name}")
            for name, model in vars(module).items():
                field = getattr(model, "model_fields", {}).get("type")
                if not inspect.isclass(model) or field is None:
                    continue
                if typing.get_origin(field.annotation) is typing.Literal:
                    values = typing.get_args(field.annotation)
                    found.update(v for v in values if "." in v or name.endswith("Event"))
    return frozenset(found)


def known_event_types() -> frozenset[str]:
    return protocol.KNOWN_EVENT_TYPES | sdk_event_types()


def _names_types(node: ast.AST, known: frozenset[str]) -> bool:
    """A comparison with a type (`x["type"] == …`, `kind in (…)`, `EVENTS.c.type == …`), or a
    literal collection holding a dotted event type: where a bare name like `error` is a type."""
    if isinstance(node, ast.Compare):
        operands = [ast.unparse(operand) for operand in (node.left, *node.comparators)]
        return any("type" in text or "kind" in text for text in operands)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(
            isinstance(e, ast.Constant) and "." in str(e.value) and e.value in known
            for e in node.elts
        )
    return False


def event_type_literals(source: str, known: frozenset[str]) -> list[tuple[int, str]]:
    """(line, literal) of each event type spelled in `source`.

    A dotted name (`response.done`) counts wherever it appears; a bare one (`error`) is also a
    field name and a status, so it counts only where `_names_types` says it is a type.
    """
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "." in node.value and node.value in known:
                found.add((node.lineno, node.value))
        elif _names_types(node, known):
            found |= _bare_names(node, known)
    return sorted(found)


def _bare_names(node: ast.AST, known: frozenset[str]) -> set[tuple[int, str]]:
    return {
        (child.lineno, child.value)
        for child in ast.walk(node)
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and child.value in known
    }


def product_modules() -> list[Path]:
    packages = [
        path.parent for path in ROOT.glob("*/__init__.py") if path.parent.name not in EXEMPT
    ]
    return sorted(module for package in packages for module in package.rglob("*.py"))


def test_no_product_module_outside_protocol_spells_an_event_type() -> None:
    known = known_event_types()
    modules = product_modules()
    assert {"storage", "dashboard", "analysis", "rtrec", "proxy"} <= {
        path.relative_to(ROOT).parts[0] for path in modules
    }
    spelled = [
        f"{path.relative_to(ROOT)}:{line}: {literal!r}"
        for path in modules
        for line, literal in event_type_literals(path.read_text(encoding="utf-8"), known)
    ]
    assert spelled == []


def test_the_known_types_include_the_sdks_ga_beta_and_live_events() -> None:
    sdk = sdk_event_types()
    assert {"response.done", "conversation.item.added", "error"} <= sdk  # GA
    assert {"conversation.item.created", "response.audio.delta"} <= sdk  # beta
    assert "session.output_audio.delta" in sdk  # GPT-Live


def test_the_walk_finds_dotted_names_anywhere_and_bare_ones_where_they_name_a_type() -> None:
    source = (
        'DONE = "response.done"\n'
        'if event["type"] == "error": pass\n'
        'PAIR = ("conversation.item.added", "error")\n'
        'error = payload.get("error")\n'
        'if status == "error": pass\n'
    )
    assert event_type_literals(source, known_event_types()) == [
        (1, "response.done"),
        (2, "error"),
        (3, "conversation.item.added"),
        (3, "error"),
    ]
