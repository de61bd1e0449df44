"""GPT-Live protocol knowledge (protocol/live.py, protocol/apis.py) against the SDK's types."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from openai.types import live as sdk
from pydantic import TypeAdapter

import protocol
from protocol import apis, live
from tests.support.live_upstream import LiveScript

SERVER_EVENT = TypeAdapter(sdk.ConnectServerEvent)
CLIENT_EVENT = TypeAdapter(sdk.ConnectClientEvent | sdk.ClientEvent)


def _literal_types(union: Any) -> set[str]:
    """Every `type` literal of the members of an SDK event union."""
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def script_events() -> list[dict[str, Any]]:
    script = LiveScript("gpt-live-1", {"type": "audio/pcm", "rate": 16000})
    return [
        script.started(),
        *script.user_transcript(),
        *script.answer(),
        *script.delegation(),
        script.usage(),
        script.error(),
        script.closed(),
    ]


def test_event_type_sets_are_the_sdks():
    assert _literal_types(sdk.ConnectServerEvent) == live.SERVER_EVENT_TYPES
    client = _literal_types(sdk.ClientEvent) | _literal_types(sdk.ConnectClientEvent)
    assert client == live.CLIENT_EVENT_TYPES


def test_every_live_event_type_is_a_metric_label():
    assert {apis.metric_event_type(t) for t in live.EVENT_TYPES} == set(live.EVENT_TYPES)
    assert apis.metric_event_type("response.done") == "response.done"
    assert apis.metric_event_type("session.made_up") == "other"


def test_the_fake_upstreams_events_are_sdk_valid():
    for event in script_events():
        assert SERVER_EVENT.validate_python(event).type == event["type"]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/live/sessions", live.PRIMARY),
        ("/v1/live/sessions/", live.PRIMARY),
        ("/openai/v1/live/sessions?api-version=x", live.PRIMARY),
        ("/v1/live/sessions/live_abc/attach?graceful_close=true", live.SIDEBAND),
        ("/v1/live/sessions/live_abc/fork", live.FORK),
        ("/v1/live/sessions/live_abc/content", None),
        ("/v1/realtime?model=gpt-realtime", None),
        ("/v1/live", None),
    ],
)
def test_socket_kind_of_paths(path: str, kind: str | None):
    assert live.socket_kind(path) == kind


def test_recorded_api_of_paths():
    assert apis.recorded_api("/v1/live/sessions", beta=True) == "live"
    assert apis.recorded_api("/v1/realtime?model=x", beta=False) == "ga"
    assert apis.recorded_api("/v1/realtime?model=x", beta=True) == "beta"
    assert apis.recorded_api("/v1/voice/streams", beta=False) is None


def test_path_shape_hides_ids_queries_and_secrets():
    shape = apis.path_shape("/v1/voice/streams/str_123abc/sk-proj-ABC123?token=x")
    assert shape == "/v1/voice/streams/{id}/{id}"
    assert apis.path_shape("/a/b/c/d/e/f/g") == "/a/b/c/d/e/…"


def test_session_start_and_started_give_model_format_and_id():
    start = CLIENT_EVENT.validate_python(
        {
            "type": "session.start",
            "session": {
                "model": "gpt-live-1.1",
                "audio": {"format": {"type": "audio/pcmu", "rate": 8000}},
            },
        }
    )
    parsed = live.session_of(start.model_dump(exclude_none=True))
    assert (parsed.model, parsed.audio_format) == ("gpt-live-1.1", protocol.G711_ULAW)
    started = script_events()[0]
    assert live.session_of(started) == live.LiveSession(
        model="gpt-live-1", openai_session_id="live_fake_0001", audio_format=live.PCM16_16K
    )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "audio/pcm", "rate": 24000}, protocol.PCM16),
        ({"type": "audio/pcm", "rate": 16000}, live.PCM16_16K),
        ({"type": "audio/pcmu", "rate": 8000}, protocol.G711_ULAW),
        ({"type": "audio/pcma", "rate": 8000}, protocol.G711_ALAW),
        ({"type": "audio/pcm", "rate": 44100}, None),
        ({"type": "audio/pcm", "rate": True}, None),
    ],
)
def test_audio_formats(fmt: dict[str, Any], expected: protocol.AudioFormat | None):
    assert live.audio_format(fmt) == expected


def test_usage_is_cumulative_with_active_derived_without_breakdown():
    plain = sdk.SessionUsageUpdatedEvent.model_validate(
        {"type": "session.usage.updated", "event_id": "e", "usage": {"seconds": 12}}
    ).model_dump(exclude_none=True)
    assert live.session_usage(plain) == live.SessionUsage(12.0, 12.0, 0.0)
    assert live.context_usage_ratio(plain) is None
    split = {"usage": {"seconds": 20, "active_seconds": 15, "paused_seconds": 5}}
    assert live.session_usage(split) == live.SessionUsage(20.0, 15.0, 5.0)
    assert live.session_usage({"usage": {"seconds": -1}}) is None


def test_closed_reason_usage_and_context_ratio():
    closed = script_events()[-1]
    assert live.close_reason(closed) == "close_requested"
    assert live.session_usage(closed) == live.SessionUsage(3.0, 3.0, 0.0)
    usage = next(e for e in script_events() if e["type"] == "session.usage.updated")
    assert live.context_usage_ratio(usage) == 0.125


def test_delegated_responses_and_decisions_usage():
    events = {e["type"]: e for e in script_events()}
    created = live.delegation(events["session.delegation.created"])
    assert created == live.Delegation("deleg_0001", "responses", "resp_fake_0001")
    delegated = live.response_event_usage(events["response.event"])
    assert delegated is not None
    assert (delegated.response_id, delegated.model, delegated.delegation_id) == (
        "resp_fake_0001",
        "gpt-5-mini",
        "deleg_0001",
    )
    assert (delegated.usage["input_text_tokens"], delegated.usage["cached_tokens"]) == (120, 20)
    decided = live.decision_event_usage(events["decision.event"])
    assert decided is not None
    assert (decided.model, decided.usage["output_tokens"]) == ("gpt-5-nano", 5)
    assert decided.response_id == f"decision-{events['decision.event']['event_id']}"


def test_a_response_event_without_a_final_response_has_no_usage():
    event = {"type": "response.event", "event": {"type": "response.output_text.delta"}}
    assert live.response_event_usage(event) is None


def test_transcript_deltas():
    delta = live.transcript_delta(script_events()[1])
    assert delta == live.TranscriptDelta("Hello", 0.0, 200.0)


def test_gpt_live_audio_is_found_by_the_one_audio_walk():
    append: dict[str, Any] = {"type": "session.input_audio.append", "audio": "AAAA"}
    output: dict[str, Any] = {"type": "session.output_audio.delta", "delta": "AAAA", "end_ms": 1}
    transcript: dict[str, Any] = {"type": "session.output_transcript.delta", "delta": "hi"}
    assert protocol.strip_payload(live.INPUT_AUDIO_APPEND, append).stream == "AAAA"
    assert protocol.strip_payload(live.OUTPUT_AUDIO_DELTA, output).stream == "AAAA"
    assert protocol.strip_payload(live.OUTPUT_TRANSCRIPT_DELTA, transcript).stream is None
    assert [append["audio"], output["delta"], transcript["delta"]] == [3, 3, "hi"]
