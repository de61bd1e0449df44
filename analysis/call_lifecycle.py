"""A call's life as people read it: created, ringing, answered, DTMF, refer, ended, with times.

Pure functions over the rows `storage.calls` returns: the `calls` row, its `call_events` (the
control requests rtrec relayed) and its sessions' transport events (`protocol.call_transport`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from analysis.stats import as_utc
from protocol.call_transport import transport_step

# What each `call_events.kind` is, as a step of the call's life.
_KIND_STEPS = {
    "created": "created",
    "accepted": "answered",
    "rejected": "rejected",
    "referred": "referred",
    "hung_up": "hung up",
    "ended": "ended",
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _step(ts: datetime, step: str, detail: str, source: str) -> dict[str, Any]:
    return {"ts": as_utc(ts), "step": step, "detail": detail, "source": source}


def request_step(event: dict[str, Any]) -> dict[str, Any]:
    """One `call_events` row as a step: `answered`, `referred` (to whom), `accept failed` (why)."""
    kind = str(event["kind"])
    detail = _dict(event.get("detail"))
    step = _KIND_STEPS.get(kind, kind.replace("_", " "))
    said: list[str] = []
    if detail.get("target_uri"):
        said.append(f"to {detail['target_uri']}")
    if detail.get("status_code") is not None:
        said.append(f"SIP {detail['status_code']}")
    if detail.get("reason"):
        said.append(str(detail["reason"]))
    if detail.get("error"):
        said.append(str(detail["error"]))
    if event.get("status") is not None and (kind == "created" or kind.endswith("_failed")):
        said.append(f"HTTP {event['status']}")
    return _step(event["ts"], step, ", ".join(said), "request")


def lifecycle(
    call: dict[str, Any],
    requests: Sequence[dict[str, Any]],
    transport_events: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every step of the call in time order. A call first seen at an accept (a SIP call) starts
    with its first sighting; keypresses seen by two sidebands of the call are listed once."""
    steps: list[dict[str, Any]] = []
    if not any(event["kind"] in ("created", "create_failed") for event in requests):
        # Only SIP calls are first seen at a control request: OpenAI rang the application.
        said = "incoming SIP call" if call.get("transport") == "sip" else ""
        steps.append(_step(call["created_at"], "first seen", said, "rtrec"))
    steps += [request_step(event) for event in requests]
    seen: set[tuple[str, str, Any]] = set()
    for event in transport_events:
        found = transport_step(event["type"], event["direction"], event.get("payload"))
        if found is None:
            continue
        payload = _dict(event.get("payload"))
        # The same keypress reaches every sideband: the server's own time (or id) tells them apart.
        when = payload.get("received_at") or event.get("event_id") or as_utc(event["ts"])
        if (found[0], found[1], when) in seen:
            continue
        seen.add((found[0], found[1], when))
        steps.append(_step(event["ts"], found[0], found[1], "sideband"))
    if call.get("ended_at") is not None and not any(s["step"] == "ended" for s in steps):
        steps.append(_step(call["ended_at"], "ended", call.get("end_reason") or "", "rtrec"))
    return sorted(steps, key=lambda s: s["ts"])
