"""Function calling, deterministically: which tool a response calls, and with what arguments."""

from __future__ import annotations

import json
from typing import Any

from simulator.events import JSON
from simulator.items import ConvItem


def function_tools(tools: Any) -> list[JSON]:
    """The ``function`` tools of a session or ``response.create`` (MCP tools are never called)."""
    if not isinstance(tools, list):
        return []
    return [
        tool
        for tool in tools
        if isinstance(tool, dict)
        and tool.get("type", "function") == "function"
        and isinstance(tool.get("name"), str)
    ]


def choose_tool(tools: Any, tool_choice: Any, context: list[ConvItem]) -> JSON | None:
    """The function the next response calls, or ``None`` for a spoken or written answer.

    ``none`` never calls; a named choice (``{"type": "function", "name": ...}``) calls that
    function and ``required`` the first one, always; ``auto`` calls the first function unless the
    newest context item is a tool result, so a ``function_call_output`` gets a normal answer.
    """
    functions = function_tools(tools)
    if not functions or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        named = [f for f in functions if f["name"] == tool_choice.get("name")]
        return named[0] if named else None
    if tool_choice == "required":
        return functions[0]
    if context and context[-1].item.get("type") == "function_call_output":
        return None
    return functions[0]


def example_arguments(parameters: Any) -> str:
    """JSON arguments that fit a tool's ``parameters`` schema: one plausible value per property."""
    schema = parameters if isinstance(parameters, dict) else {}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return "{}"
    return json.dumps({name: _example_value(spec) for name, spec in properties.items()})


def _example_value(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return "example"
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    examples: dict[str, Any] = {
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "null": None,
    }
    if kind == "object":
        return json.loads(example_arguments(spec))
    return examples.get(str(kind), "example")
