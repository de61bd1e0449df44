"""recorder/calls.py: call requests to call records, one usage per call, audio seen or not."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from recorder.call_observer import observer_config, sideband_url
from recorder.calls import CallRecorder, resolved
from storage.records import (
    AudioRecord,
    CallChanged,
    CallEventRecord,
    CallSeen,
    ResponseDone,
    SessionUsageChanged,
)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 9 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "",
    ]
)
NOW = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)


def notice(method: str, path: str, status: int, body: Any = None, **extra: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
    return {
        "requested_at": NOW.timestamp(),
        "answered_at": NOW.timestamp() + 0.1,
        "method": method,
        "path": path,
        "request_type": extra.pop("request_type", "application/json"),
        "request_body": base64.b64encode(raw).decode(),
        "status": status,
        "upstream": "http://127.0.0.1:9",
        "record_mode": "text",
        **extra,
    }


def test_a_live_create_takes_its_id_from_the_reply_body():
    reply = {"session": {"id": "live_abc"}, "transport": {"type": "webrtc", "sdp": OFFER}}
    request = {"session": {"model": "gpt-live-1"}, "transport": {"type": "webrtc", "sdp": OFFER}}
    step = CallRecorder().handle(
        notice(
            "POST",
            "/v1/live/sessions",
            200,
            request,
            response_type="application/json",
            response_body=base64.b64encode(json.dumps(reply).encode()).decode(),
        )
    )
    (seen,) = [r for r in resolved(step.records) if isinstance(r, CallSeen)]
    assert (seen.id, seen.api, seen.transport, seen.model) == (
        "live_abc",
        "live",
        "webrtc",
        "gpt-live-1",
    )
    assert seen.offer == {
        "media": [{"kind": "audio", "direction": None, "codecs": ["audio/PCMU/8000/1"]}]
    }
    assert step.metric_labels == ("live", "webrtc", "answered")
    assert step.observe


def test_a_refused_create_is_a_failed_call_with_no_id_of_its_own():
    step = CallRecorder().handle(
        notice("POST", "/v1/realtime/calls", 401, OFFER.encode(), request_type="application/sdp")
    )
    seen = next(r for r in step.records if isinstance(r, CallSeen))
    assert (seen.status, seen.create_status, len(seen.id)) == ("failed", 401, 36)
    assert step.metric_labels == ("ga", "webrtc", "failed")
    assert not step.observe


def _done(session_id: str, response_id: str) -> ResponseDone:
    usage: dict[str, int | None] = {"total_tokens": 10, "input_tokens": 6, "output_tokens": 4}
    return ResponseDone(session_id, response_id, NOW, "completed", usage=usage, cost_usd=0.01)


def test_a_response_reported_by_two_sidebands_of_a_call_keeps_its_usage_once():
    calls = CallRecorder()
    first = calls.of_call("rtc_1", [_done("observer", "resp_1")])
    second = calls.of_call("rtc_1", [_done("sideband", "resp_1")])
    other_call = calls.of_call("rtc_2", [_done("sideband-2", "resp_1")])
    assert first[0] == _done("observer", "resp_1")
    kept = second[0]
    assert isinstance(kept, ResponseDone)
    assert (kept.cost_usd, set(kept.usage.values())) == (None, {None})
    assert set(kept.usage) == {"total_tokens", "input_tokens", "output_tokens"}
    assert other_call[0] == _done("sideband-2", "resp_1")


def _seconds(session_id: str, seconds: float, **extra: Any) -> SessionUsageChanged:
    return SessionUsageChanged(
        session_id, seconds, seconds, 0.0, seconds_cost_usd=seconds * 0.05 / 60, **extra
    )


def test_a_live_calls_seconds_stay_on_one_session_and_never_go_down():
    calls = CallRecorder()
    assert calls.of_call("live_1", [_seconds("observer", 4.0)]) == [_seconds("observer", 4.0)]
    # The application's sideband reports the call's seconds too: they go to the first row.
    closed = _seconds("sideband", 6.0, usage_final=True, end_reason="remote_hangup")
    assert calls.of_call("live_1", [closed]) == [
        SessionUsageChanged("sideband", end_reason="remote_hangup"),
        _seconds("observer", 6.0, usage_final=True),
    ]
    # The observer lagging behind takes nothing back; its own row keeps the rest.
    late = _seconds("observer", 5.0, context_usage_ratio=0.1)
    assert calls.of_call("live_1", [late]) == [
        SessionUsageChanged("observer", context_usage_ratio=0.1)
    ]
    assert calls.billed_of("live_1") is calls.billed_of("live_1")  # the metrics' share too


def test_a_call_is_marked_as_having_audio_only_when_a_sideband_carried_some():
    calls = CallRecorder()
    calls.handle(notice("POST", "/v1/realtime/calls/rtc_9/accept", 200, {"type": "realtime"}))
    assert not any(isinstance(r, CallChanged) for r in calls.of_call("rtc_9", [_done("s", "r")]))
    audio = AudioRecord("s", 3, NOW, "server", "pcm16", 24000, "AAAA")
    marked = [r for r in calls.of_call("rtc_9", [audio]) if isinstance(r, CallChanged)]
    assert marked == [CallChanged("rtc_9", audio_recorded=True)]
    assert calls.of_call("rtc_9", [audio]) == [audio]  # marked once


def test_observing_calls_needs_the_observers_key_in_the_environment():
    with pytest.raises(ValueError, match="RTREC_OBSERVER_API_KEY"):
        observer_config({"RTREC_OBSERVER_API_KEY": " "})
    assert observer_config({"RTREC_OBSERVER_API_KEY": "sk-x"}).api_key == "sk-x"


def test_the_observer_attaches_where_the_calls_requests_went():
    calls = CallRecorder()
    step = calls.handle(notice("POST", "/openai/v1/realtime/calls/rtc_5/accept", 200, {}))
    assert step.call is not None
    assert sideband_url(step.call) == "ws://127.0.0.1:9/openai/v1/realtime?call_id=rtc_5"


def test_redact_pii_takes_the_number_out_of_a_refer_and_the_config():
    calls = CallRecorder(redact_pii=True)
    accept = {"type": "realtime", "instructions": "Call back on +1 415 555 0100 if cut."}
    accepted = calls.handle(notice("POST", "/v1/realtime/calls/rtc_p/accept", 200, accept))
    changed = next(r for r in accepted.records if isinstance(r, CallChanged))
    assert "415" not in json.dumps(changed.config)
    refer = {"target_uri": "tel:+14155550100"}
    referred = calls.handle(notice("POST", "/v1/realtime/calls/rtc_p/refer", 200, refer))
    event = next(r for r in referred.records if isinstance(r, CallEventRecord))
    assert "4155550100" not in event.detail["target_uri"]
    kept = CallRecorder().handle(notice("POST", "/v1/realtime/calls/rtc_q/refer", 200, refer))
    assert next(r for r in kept.records if isinstance(r, CallEventRecord)).detail == {
        "path": "/v1/realtime/calls/rtc_q/refer",
        "target_uri": "tel:+14155550100",
    }
