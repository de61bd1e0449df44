"""`rtrec replay`: re-drive the client side of a recorded session through a recording proxy.

The replay sends the recorded client events in order (audio appends with their recorded bytes,
tool outputs answered from the recording, or by a `--tool-hook` of the user's), and before each
one waits until the upstream has answered as far as it had in the recording (the same count
of `session.updated`, `response.created`, `response.done` …). It runs its own `rtrec proxy`
child, so the replay is a recorded session of its own, linked to the original by the
`Rtrec-Replay-Of` header.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

import protocol

logger = logging.getLogger("rtrec")

DEFAULT_UPSTREAM = "https://api.openai.com"
# Client event fields that name a server-made item.
ITEM_ID_FIELDS = ("item_id", "previous_item_id")
WAIT_S = 30.0
PLACEHOLDER_KEY = "sk-rtrec-replay-no-key"


@dataclass
class Step:
    """One client event to send, after `waits` server events of each type have arrived."""

    event: dict[str, Any]
    delay_s: float
    waits: dict[str, int]


@dataclass
class Plan:
    steps: list[Step]
    final_waits: dict[str, int]
    #: call_ids of the recorded function calls, in the order the server made them.
    call_ids: list[str] = field(default_factory=list)
    #: ids of the items the server announced, in order.
    item_ids: list[str] = field(default_factory=list)
    skipped_audio: int = 0
    #: error codes the upstream sent in the recording, one entry per `error` event.
    error_codes: list[str] = field(default_factory=list)


class ReplayError(Exception):
    """The replay could not run as recorded; the message says why on one line."""


@dataclass(frozen=True)
class Overrides:
    """What a replay changes in the recorded configuration (`--model`, `--voice`, …)."""

    model: str | None = None
    voice: str | None = None
    instructions: str | None = None


def error_code(event: dict[str, Any]) -> str | None:
    """An `error` event's code (or type): what is compared between a recording and its replay."""
    if event.get("type") != protocol.ERROR:
        return None
    kind, code = protocol.error_fields(event)
    return code or kind or "unknown"


def _seconds(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds())


def plan(events: list[dict[str, Any]], audio: dict[int, bytes], with_audio: bool) -> Plan:
    """The steps of a replay, from a session's events in `seq` order and its client audio."""
    seen = dict.fromkeys(protocol.REPLAY_BARRIERS, 0)
    steps: list[Step] = []
    call_ids: list[str] = []
    item_ids: list[str] = []
    skipped = 0
    errors: list[str] = []
    previous: datetime | None = None
    for row in events:
        payload = row["payload"]
        if row["direction"] == "server":
            if row["type"] in seen:
                seen[row["type"]] += 1
            if isinstance(payload, dict):
                call_ids += _function_call_ids(payload)
                item_ids += announced_item(payload, item_ids)
                errors += [code] if (code := error_code(payload)) else []
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            continue  # binary or invalid frames: nothing a client meant to send
        event = dict(payload)
        if event["type"] == protocol.AUDIO_APPEND:
            chunk = audio.get(row["seq"])
            if not with_audio or chunk is None:
                skipped += 1
                continue
            event["audio"] = base64.b64encode(chunk).decode()
        delay = _seconds(previous, row["ts"]) if previous else 0.0
        previous = row["ts"]
        steps.append(Step(event, delay, dict(seen)))
    return Plan(steps, dict(seen), call_ids, item_ids, skipped, errors)


def announced_item(event: dict[str, Any], known: list[str]) -> list[str]:
    item = event.get("item")
    if event.get("type") not in protocol.ITEM_ADDED or not isinstance(item, dict):
        return []
    item_id = item.get("id")
    return [item_id] if isinstance(item_id, str) and item_id not in known else []


def function_calls(done: dict[str, Any]) -> list[dict[str, Any]]:
    if done.get("type") != protocol.RESPONSE_DONE:
        return []
    response = done.get("response")
    if not isinstance(response, dict):
        return []
    return [
        item
        for item in response.get("output") or []
        if isinstance(item, dict) and item.get("type") == "function_call" and item.get("call_id")
    ]


def _function_call_ids(done: dict[str, Any]) -> list[str]:
    return [str(item["call_id"]) for item in function_calls(done)]


ToolHook = Callable[[str, str], str]
"""`tool_output(name, arguments) -> output`: answers the replay's function calls itself."""


def load_tool_hook(path: str) -> ToolHook:
    """The `tool_output` function of the Python file at `path` (`rtrec replay --tool-hook`)."""
    spec = importlib.util.spec_from_file_location("rtrec_tool_hook", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    hook = getattr(module, "tool_output", None)
    if not callable(hook):
        raise ValueError(f"{path} defines no tool_output(name, arguments) function")
    return cast(ToolHook, hook)


def answer_with_hook(
    event: dict[str, Any], calls: dict[str, dict[str, Any]], hook: ToolHook
) -> dict[str, Any]:
    """A `function_call_output` for one of the replay's own calls, answered by `hook` instead
    of the recording (the event already carries the replay's call id)."""
    item = event.get("item")
    if (
        event.get("type") != protocol.ITEM_CREATE
        or not isinstance(item, dict)
        or item.get("type") != "function_call_output"
        or item.get("call_id") not in calls
    ):
        return event
    call = calls[item["call_id"]]
    output = hook(str(call.get("name", "")), str(call.get("arguments", "")))
    return {**event, "item": {**item, "output": str(output)}}


def rewrite(
    event: dict[str, Any], ids: dict[str, str], overrides: Overrides | None
) -> dict[str, Any]:
    """The event as the replay sends it: recorded call and item ids become the replay's own,
    and a `session.update` carries the overrides."""
    event = dict(event)
    for name in ITEM_ID_FIELDS:
        if isinstance(event.get(name), str) and event[name] in ids:
            event[name] = ids[event[name]]
    item = event.get("item")
    if (
        event["type"] == protocol.ITEM_CREATE
        and isinstance(item, dict)
        and item.get("type") == "function_call_output"
        and item.get("call_id") in ids
    ):
        event["item"] = {**item, "call_id": ids[item["call_id"]]}
    if event["type"] == protocol.RESPONSE_CANCEL:
        # The replay's response has another id: cancel whichever is in progress.
        event.pop("response_id", None)
    session = event.get("session")
    if overrides and event["type"] == protocol.SESSION_UPDATE and isinstance(session, dict):
        event["session"] = override_session(session, overrides)
    return event


def override_session(session: dict[str, Any], overrides: Overrides) -> dict[str, Any]:
    """A `session.update`'s session with the replay's model, voice and instructions."""
    session = dict(session)
    if overrides.model and "model" in session:
        session["model"] = overrides.model
    if overrides.instructions is not None:
        session["instructions"] = overrides.instructions
    if overrides.voice:
        if "type" in session or "audio" in session:  # GA: the voice is the output audio's
            audio = _dict(session.get("audio"))
            output = _dict(audio.get("output"))
            session["audio"] = {**audio, "output": {**output, "voice": overrides.voice}}
        else:
            session["voice"] = overrides.voice
    return session


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def with_overrides(steps: Plan, overrides: Overrides, api: str) -> Plan:
    """The plan, with a first `session.update` for a voice or instructions override when the
    recording never sent one (rewrite() puts the overrides into recorded ones)."""
    wanted = overrides.voice or overrides.instructions is not None
    if not wanted or any(s.event["type"] == protocol.SESSION_UPDATE for s in steps.steps):
        return steps
    session: dict[str, Any] = {} if api == "beta" else {"type": "realtime"}
    update = {"type": protocol.SESSION_UPDATE, "session": session}
    first = Step(update, 0.0, {protocol.SESSION_CREATED: 1})
    return replace(steps, steps=[first, *steps.steps])


def replay_path(recorded_path: str, model: str | None) -> str:
    """The recorded path with `model` swapped in and redacted parameters left out."""
    base, _, query = recorded_path.partition("?")
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if "[REDACTED]" not in v]
    if model:
        names = {k for k, _ in pairs}
        key = "deployment" if "deployment" in names and "model" not in names else "model"
        pairs = [(k, v) for k, v in pairs if k != key] + [(key, model)]
    return f"{base}?{urlencode(pairs)}" if pairs else base
