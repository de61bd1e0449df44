"""The session recorder's event and audio records carry each value in its named field (the hot
path builds them positionally: a field moved in `storage/records.py` must fail here)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from recorder.session import SessionRecorder
from storage.records import AudioRecord, EventRecord, SessionOpened

TS = 1_767_225_600.25


def recorder(record_mode: str = "full") -> SessionRecorder:
    opened = SessionOpened(
        id="sess-1",
        started_at=datetime.fromtimestamp(TS, UTC),
        api="ga",
        path="/v1/realtime",
        record_mode=record_mode,
        model="gpt-realtime",
    )
    return SessionRecorder(opened, record_mode=record_mode, seq=7)


def test_an_audio_delta_fills_every_field_of_its_event_and_audio_records():
    delta = {
        "type": "response.output_audio.delta",
        "event_id": "evt_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "delta": "QUJDRA==",
    }
    content = orjson.dumps(delta)
    event, audio = recorder().on_message(False, content, True, TS)
    at = datetime.fromtimestamp(TS, UTC)
    assert event == EventRecord(
        session_id="sess-1",
        seq=7,
        ts=at,
        direction="server",
        type="response.output_audio.delta",
        size_bytes=len(content),
        payload={**delta, "delta": 4},
        event_id="evt_1",
        response_id="resp_1",
        item_id="item_1",
        error_type=None,
        error_code=None,
    )
    assert audio == AudioRecord(
        session_id="sess-1",
        seq=7,
        ts=at,
        direction="server",
        audio_format="pcm16",
        sample_rate=24_000,
        audio_base64="QUJDRA==",
        response_id="resp_1",
        item_id="item_1",
    )


def test_an_error_event_names_its_error_type_and_code():
    error = {"type": "error", "event_id": "evt_2", "error": {"type": "bad_request", "code": "x"}}
    (event,) = recorder().on_message(False, orjson.dumps(error), True, TS)
    assert isinstance(event, EventRecord)
    assert (event.error_type, event.error_code, event.event_id) == ("bad_request", "x", "evt_2")


def test_an_odd_frame_keeps_its_size_and_direction_only_in_metadata_mode():
    (event,) = recorder("metadata").on_message(True, b"\x00\x01", False, TS)
    assert event == EventRecord(
        session_id="sess-1",
        seq=7,
        ts=datetime.fromtimestamp(TS, UTC),
        direction="client",
        type="binary",
        size_bytes=2,
    )
