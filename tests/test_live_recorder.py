"""LiveSessionRecorder: GPT-Live frames to records (turns, usage, audio sides), no proxy."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from protocol.pricing import BUILTIN_PRICES, PriceTable
from recorder.live_session import LiveSessionRecorder
from storage.records import AudioRecord, ResponseDone, SessionOpened, SessionUsageChanged
from tests.support.live_upstream import LiveScript

PCM_16K = {"type": "audio/pcm", "rate": 16000}
START_16K = {
    "type": "session.start",
    "session": {"model": "gpt-live-1", "audio": {"format": PCM_16K}},
}


def recorder(path: str = "/v1/live/sessions") -> LiveSessionRecorder:
    opened = SessionOpened(
        id="s", started_at=datetime.now(UTC), api="live", path=path, record_mode="full"
    )
    return LiveSessionRecorder(opened, prices=PriceTable(BUILTIN_PRICES))


def feed(rec: LiveSessionRecorder, from_client: bool, event: dict[str, Any], ts: float) -> list:
    return rec.on_message(from_client, json.dumps(event).encode(), True, ts)


def append(ms: int, rate: int = 16000) -> dict[str, Any]:
    audio = base64.b64encode(b"\x00\x00" * (rate * ms // 1000)).decode()
    return {"type": "session.input_audio.append", "audio": audio}


def test_a_turn_starts_at_the_first_output_audio_after_user_speech():
    rec, script = recorder(), LiveScript("gpt-live-1", PCM_16K)
    feed(rec, True, START_16K, 0.0)
    for second in range(4):  # 100 ms of audio each, relayed at 1.0, 1.1, 1.2, 1.3
        feed(rec, True, append(100), 1.0 + second / 10)
    for event in script.user_transcript():  # ends at end_ms 400: the append relayed at 1.3
        feed(rec, False, event, 2.0)
    first, *rest = script.answer()
    assert feed(rec, False, first, 2.5)[-1].response_id == "live-turn-1"
    for event in rest:
        feed(rec, False, event, 2.6)
    closing = rec.closing(3.0, 1000, None, "client")
    (done,) = [r for r in closing if isinstance(r, ResponseDone)]
    assert (done.response_id, done.time_to_first_audio_ms) == ("live-turn-1", 500.0)
    assert done.voice_to_voice_ms == pytest.approx(1200.0)
    assert done.created_at is not None
    assert (done.done_at - done.created_at).total_seconds() == pytest.approx(0.1)


def test_user_speech_ends_the_turn_and_the_next_audio_is_a_new_one():
    rec, script = recorder(), LiveScript("gpt-live-1", PCM_16K)
    audio = script.answer()[0]
    feed(rec, False, audio, 1.0)
    ended = feed(rec, False, script.user_transcript()[0], 2.0)
    assert [r.response_id for r in ended if isinstance(r, ResponseDone)] == ["live-turn-1"]
    assert feed(rec, False, audio, 3.0)[-1].response_id == "live-turn-2"


def test_usage_is_the_last_cumulative_value_and_metrics_get_the_increments():
    rec = recorder()
    feed(rec, False, LiveScript("gpt-live-1.1", PCM_16K).started(), 0.0)
    for seconds, paused in ((10, 0), (20, 5), (20, 5)):
        usage = {"seconds": seconds, "active_seconds": seconds - paused, "paused_seconds": paused}
        records = feed(rec, False, {"type": "session.usage.updated", "usage": usage}, 1.0)
    (changed,) = [r for r in records if isinstance(r, SessionUsageChanged)]
    assert (changed.billable_seconds, changed.active_seconds, changed.paused_seconds) == (20, 15, 5)
    assert changed.seconds_cost_usd == pytest.approx((15 * 0.05 + 5 * 0.02) / 60)
    assert changed.usage_final is None
    increments, _ = rec.take_billing()
    assert (increments["active"], increments["paused"]) == (15, 5)
    assert rec.take_billing() == ({}, [])


def test_session_closed_makes_the_usage_final_with_its_reason():
    rec = recorder()
    records = feed(rec, False, LiveScript("gpt-live-1", PCM_16K).closed(), 1.0)
    (changed,) = [r for r in records if isinstance(r, SessionUsageChanged)]
    assert (changed.usage_final, changed.end_reason, changed.billable_seconds) == (
        True,
        "close_requested",
        3.0,
    )


def test_the_session_format_applies_to_both_sides():
    rec, script = recorder(), LiveScript("gpt-live-1", PCM_16K)
    feed(rec, True, {"type": "session.start", "session": {"model": "gpt-live-1"}}, 0.0)
    feed(rec, False, script.started(), 0.1)  # the server's resolved format: 16 kHz
    (_, user) = feed(rec, True, append(100), 1.0)
    (_, assistant) = feed(rec, False, script.answer()[0], 2.0)[:2]
    assert isinstance(user, AudioRecord)
    assert (user.direction, user.sample_rate) == ("client", 16000)
    assert isinstance(assistant, AudioRecord)
    assert (assistant.direction, assistant.sample_rate) == ("server", 16000)


def test_sideband_reflected_input_audio_is_the_users_at_24_khz():
    rec = recorder("/v1/live/sessions/live_1/attach")
    feed(rec, False, LiveScript("gpt-live-1", PCM_16K).started(), 0.0)
    event, audio = feed(rec, False, append(100, rate=24000), 1.0)
    assert (event.direction, event.payload["audio"]) == ("server", 4800)
    assert isinstance(audio, AudioRecord)
    assert (audio.direction, audio.audio_format, audio.sample_rate) == ("client", "pcm16", 24000)


def test_a_failed_sip_transport_is_an_error_with_type_and_code():
    failed = {
        "type": "transport.failed",
        "event_id": "e1",
        "session_id": "live_1",
        "error": {"type": "call_error", "code": "busy", "message": "486 Busy Here"},
    }
    (event,) = feed(recorder("/v1/live/sessions/live_1/attach"), False, failed, 1.0)
    assert (event.error_type, event.error_code) == ("call_error", "busy")
