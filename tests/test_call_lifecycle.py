"""A call's lifecycle from its `calls` row, its control requests and its sidebands' events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from analysis.call_lifecycle import lifecycle
from protocol.call_transport import transport_step

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(seconds: float, type_: str, direction: str = "server", **payload: Any) -> dict[str, Any]:
    return {"ts": at(seconds), "type": type_, "direction": direction, "payload": payload}


def test_dtmf_ringing_and_failures_are_read_from_sideband_events():
    assert transport_step("input_audio_buffer.dtmf_event_received", "server", {"event": "7"}) == (
        "DTMF received",
        "7",
    )
    assert transport_step("transport.dtmf.send", "server", {"event": "#"}) == ("DTMF sent", "#")
    assert transport_step("transport.dtmf.send", "client", {"event": "#"}) is None  # a request
    assert transport_step("transport.ringing", "server", {}) == ("ringing", "")
    failed = {"error": {"type": "call_error", "code": "busy", "message": "Line busy"}}
    assert transport_step("transport.failed", "server", failed) == ("failed", "busy: Line busy")
    assert transport_step("response.done", "server", {}) is None


def test_a_sip_call_reads_from_first_sighting_to_its_end():
    call = {"created_at": at(0), "transport": "sip", "ended_at": at(9), "end_reason": "referred"}
    requests = [
        {"ts": at(0), "kind": "accepted", "status": 200, "detail": {"path": "/x"}},
        {"ts": at(9), "kind": "referred", "status": 200, "detail": {"target_uri": "tel:+1555"}},
    ]
    # The same keypress on both sidebands of the call, then a second one.
    sideband = [
        event(3, "input_audio_buffer.dtmf_event_received", event="5", received_at=1),
        event(3.01, "input_audio_buffer.dtmf_event_received", event="5", received_at=1),
        event(5, "input_audio_buffer.dtmf_event_received", event="5", received_at=2),
        event(6, "response.done"),
    ]
    steps = lifecycle(call, requests, sideband)
    assert [(s["step"], s["detail"]) for s in steps] == [
        ("first seen", "incoming SIP call"),
        ("answered", ""),
        ("DTMF received", "5"),
        ("DTMF received", "5"),
        ("referred", "to tel:+1555"),
        ("ended", "referred"),
    ]
    assert steps[-1]["ts"] == at(9)


def test_a_failed_create_says_its_http_status_and_a_created_call_has_no_first_sighting():
    call = {"created_at": at(0), "status": "failed", "ended_at": at(0), "end_reason": None}
    requests = [{"ts": at(0), "kind": "create_failed", "status": 401, "detail": {}}]
    steps = lifecycle(call, requests, [])
    assert [(s["step"], s["detail"]) for s in steps] == [
        ("create failed", "HTTP 401"),
        ("ended", ""),
    ]
