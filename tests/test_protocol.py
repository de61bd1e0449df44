"""The pure protocol functions and the session recorder over every reference fixture line."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import protocol
from analysis import conversation
from protocol.pricing import BUILTIN_PRICES, Price, PriceTable
from recorder.session import SessionRecorder
from storage.records import (
    AudioRecord,
    EventRecord,
    RateLimitRecord,
    ResponseCreated,
    ResponseDone,
    SessionChanged,
    SessionOpened,
    TranscriptionRecord,
)
from tests.support.fixtures import FIXTURES_DIR, fixture_lines

ALL_LINES = [
    pytest.param(name, index, line, id=f"{name}:{index + 1}")
    for name in ("beta.jsonl", "ga.jsonl")
    for index, line in enumerate(fixture_lines(name))
]


def replay(name: str, record_mode: str = "full") -> tuple[SessionRecorder, list[Any]]:
    recorder = SessionRecorder(
        SessionOpened(
            id="s1",
            started_at=datetime(2025, 1, 1, tzinfo=UTC),
            api="ga",
            path="/v1/realtime",
            record_mode=record_mode,
        ),
        record_mode=record_mode,
    )
    records: list[Any] = []
    for index, line in enumerate(fixture_lines(name)):
        content = json.dumps(line["event"]).encode()
        records += recorder.on_message(line["direction"] == "client", content, True, 1000.0 + index)
    return recorder, records


@pytest.mark.parametrize(("name", "index", "line"), ALL_LINES)
def test_every_fixture_line_becomes_one_typed_event(name: str, index: int, line: dict[str, Any]):
    recorder = SessionRecorder(SessionOpened("s", None, "ga", "/v1/realtime", "full"))  # type: ignore[arg-type]
    recorder.seq = index
    raw = json.dumps(line["event"]).encode()
    records = recorder.on_message(line["direction"] == "client", raw, True, 1.0)
    events = [r for r in records if isinstance(r, EventRecord)]
    assert len(events) == 1
    event = events[0]
    assert (event.seq, event.type, event.direction) == (
        index,
        line["event"]["type"],
        line["direction"],
    )
    assert event.size_bytes == len(raw)
    assert event.event_id == line["event"].get("event_id")
    assert "obfuscation" not in event.payload


@pytest.mark.parametrize("name", ["beta.jsonl", "ga.jsonl"])
def test_response_usage_is_stored_exactly_as_sent(name: str):
    _, records = replay(name)
    done_events = [
        line["event"] for line in fixture_lines(name) if line["event"]["type"] == "response.done"
    ]
    done_records = [r for r in records if isinstance(r, ResponseDone)]
    assert [r.response_id for r in done_records] == [e["response"]["id"] for e in done_events]
    for record, event in zip(done_records, done_events, strict=True):
        response = event["response"]
        usage = response.get("usage") or {}
        itd = usage.get("input_token_details", {})
        assert record.status == response["status"]
        assert record.usage["input_tokens"] == usage.get("input_tokens")
        assert record.usage["output_tokens"] == usage.get("output_tokens")
        assert record.usage["total_tokens"] == usage.get("total_tokens")
        assert record.usage["cached_tokens"] == itd.get("cached_tokens")
        assert record.usage["input_audio_tokens"] == itd.get("audio_tokens")
        assert record.usage["cached_audio_tokens"] == itd.get("cached_tokens_details", {}).get(
            "audio_tokens"
        )
        assert record.usage["output_audio_tokens"] == usage.get("output_token_details", {}).get(
            "audio_tokens"
        )


def test_failed_response_keeps_error_and_null_usage():
    _, records = replay("ga.jsonl")
    failed = [r for r in records if isinstance(r, ResponseDone) and r.status == "failed"]
    assert len(failed) == 1
    assert (failed[0].error_type, failed[0].error_code) == ("tokens", "rate_limit_exceeded")
    assert set(failed[0].usage.values()) == {None}


def test_cancelled_responses_keep_their_reason():
    reasons = {
        name: [
            r.status_reason
            for r in replay(name)[1]
            if isinstance(r, ResponseDone) and r.status == "cancelled"
        ]
        for name in ("beta.jsonl", "ga.jsonl")
    }
    assert reasons == {"beta.jsonl": ["client_cancelled"], "ga.jsonl": ["turn_detected"]}


@pytest.mark.parametrize("name", ["beta.jsonl", "ga.jsonl"])
def test_rate_limit_rows_one_per_entry(name: str):
    _, records = replay(name)
    expected = [
        (entry["name"], entry["limit"], entry["remaining"], entry["reset_seconds"])
        for line in fixture_lines(name)
        if line["event"]["type"] == "rate_limits.updated"
        for entry in line["event"]["rate_limits"]
    ]
    got = [
        (r.name, r.limit_value, r.remaining, r.reset_seconds)
        for r in records
        if isinstance(r, RateLimitRecord)
    ]
    assert expected
    assert got == expected


@pytest.mark.parametrize(
    ("name", "model", "usage_type"),
    [("beta.jsonl", "whisper-1", "duration"), ("ga.jsonl", "gpt-4o-mini-transcribe", "tokens")],
)
def test_transcriptions_carry_model_and_usage(name: str, model: str, usage_type: str):
    _, records = replay(name)
    transcriptions = [r for r in records if isinstance(r, TranscriptionRecord)]
    completed = [
        line["event"]
        for line in fixture_lines(name)
        if line["event"]["type"] == protocol.TRANSCRIPTION_COMPLETED
    ]
    assert [t.transcript for t in transcriptions] == [e["transcript"] for e in completed]
    assert transcriptions[0].model == model
    assert transcriptions[0].usage_type == usage_type
    usage = completed[0]["usage"]
    if usage_type == "duration":
        assert transcriptions[0].seconds == usage["seconds"]
    else:
        assert (transcriptions[0].input_tokens, transcriptions[0].output_tokens) == (
            usage["input_tokens"],
            usage["output_tokens"],
        )


@pytest.mark.parametrize("name", ["beta.jsonl", "ga.jsonl"])
def test_audio_is_split_out_and_counted(name: str):
    _, records = replay(name)
    audio_lines = [
        (
            line["event"],
            "audio" if line["event"]["type"] == "input_audio_buffer.append" else "delta",
        )
        for line in fixture_lines(name)
        if line["event"]["type"] == "input_audio_buffer.append"
        or line["event"]["type"] in protocol.AUDIO_DELTAS
    ]
    audio = [r for r in records if isinstance(r, AudioRecord)]
    assert [a.audio_base64 for a in audio] == [event[field] for event, field in audio_lines]
    events_with_audio = [
        r
        for r in records
        if isinstance(r, EventRecord) and r.type in protocol.AUDIO_DELTAS | {protocol.AUDIO_APPEND}
    ]
    for record, (event, field) in zip(events_with_audio, audio_lines, strict=True):
        assert record.payload[field] == len(base64.b64decode(event[field]))


def test_session_model_and_id_come_from_the_server():
    _, records = replay("ga.jsonl")
    changes = [r for r in records if isinstance(r, SessionChanged)]
    assert changes[0].model == "gpt-realtime"
    assert changes[0].openai_session_id is not None
    assert changes[0].openai_session_id.startswith("sess_")


def test_response_created_rows_precede_done():
    _, records = replay("ga.jsonl")
    created = [r.response_id for r in records if isinstance(r, ResponseCreated)]
    done = [r.response_id for r in records if isinstance(r, ResponseDone)]
    assert created == done


def test_metadata_mode_keeps_no_content():
    _, records = replay("ga.jsonl", record_mode="metadata")
    assert all(r.payload is None for r in records if isinstance(r, EventRecord))
    assert all(r.transcript is None for r in records if isinstance(r, TranscriptionRecord))
    assert not [r for r in records if isinstance(r, AudioRecord)]


def test_text_mode_keeps_text_but_no_audio():
    _, records = replay("ga.jsonl", record_mode="text")
    assert not [r for r in records if isinstance(r, AudioRecord)]
    assert any(r.transcript for r in records if isinstance(r, TranscriptionRecord))


@pytest.mark.parametrize(
    ("content", "is_text", "expected"),
    [
        (b"\x00\x01\x02", False, "binary"),
        (b"not json", True, "invalid"),
        (b"[1, 2]", True, "invalid"),
        (b'{"type": 5}', True, "invalid"),
        (b'{"no_type": true}', True, "invalid"),
        (b'{"type": "brand.new.event"}', True, "brand.new.event"),
        (b'{"type": "x", "n": 123456789012345678901234567890}', True, "x"),
    ],
)
def test_odd_frames_are_typed(content: bytes, is_text: bool, expected: str):
    assert protocol.parse_frame(content, is_text)[0] == expected


def test_counters_past_64_bits_become_null():
    usage = protocol.response_usage(
        {"input_tokens": 2**64, "output_tokens": 3, "total_tokens": True}
    )
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (None, 3, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pcm16", protocol.PCM16),
        ("g711_ulaw", protocol.G711_ULAW),
        ({"type": "audio/pcma"}, protocol.G711_ALAW),
        ({"type": "audio/pcm", "rate": 24000}, protocol.PCM16),
        ({"type": "audio/pcmu", "rate": 8000}, protocol.G711_ULAW),
        ({"type": "audio/pcm", "rate": 16000}, None),  # the API accepts 24 kHz only
        ({"type": "audio/pcm", "rate": 5_000_000_000}, None),
        ({"type": "audio/pcm", "rate": "24000"}, None),
        ({"type": "audio/pcma", "rate": 24000}, None),
        ("mp3", None),
    ],
)
def test_audio_formats(value: Any, expected: protocol.AudioFormat | None):
    assert protocol.audio_format(value) == expected


def test_g711_session_changes_the_recorded_audio_format():
    recorder = SessionRecorder(SessionOpened("s", None, "ga", "/v1/realtime", "full"))  # type: ignore[arg-type]
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}},
    }
    recorder.on_message(True, orjson.dumps(update), True, 1.0)
    append = {
        "type": "input_audio_buffer.append",
        "audio": base64.b64encode(b"\xff" * 160).decode(),
    }
    audio = [
        r
        for r in recorder.on_message(True, orjson.dumps(append), True, 2.0)
        if isinstance(r, AudioRecord)
    ]
    assert (audio[0].audio_format, audio[0].sample_rate) == ("g711_ulaw", 8000)


@pytest.mark.parametrize("from_client", [True, False])
def test_a_rate_the_api_refuses_keeps_the_recorded_audio_format(from_client: bool):
    recorder = SessionRecorder(SessionOpened("s", None, "ga", "/v1/realtime", "full"))  # type: ignore[arg-type]
    absurd = {"type": "audio/pcm", "rate": 5_000_000_000}
    update = {
        "type": "session.update" if from_client else "session.updated",
        "session": {"type": "realtime", "audio": {"input": {"format": absurd}}},
    }
    recorder.on_message(from_client, orjson.dumps(update), True, 1.0)
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 480).decode()}
    (_, audio) = recorder.on_message(True, orjson.dumps(append), True, 2.0)
    assert isinstance(audio, AudioRecord)
    assert (audio.audio_format, audio.sample_rate) == ("pcm16", 24000)


@pytest.mark.parametrize("text", ["", "QQ==", "QUI=", "QUJD", "QUJDRA=="])
def test_base64_size_without_decoding(text: str):
    assert protocol.base64_decoded_size(text) == len(base64.b64decode(text))


@pytest.mark.parametrize(
    ("path", "realtime", "model"),
    [
        ("/v1/realtime?model=gpt-realtime", True, "gpt-realtime"),
        ("/openai/realtime?api-version=2025-04-01-preview&deployment=my-dep", True, "my-dep"),
        ("/v1/realtime?intent=transcription", True, None),
        ("/v1/realtime/translations", False, None),
        ("/v1/chat/completions", False, None),
    ],
)
def test_realtime_paths_and_models(path: str, realtime: bool, model: str | None):
    assert protocol.is_realtime_path(path) is realtime
    assert protocol.model_from_path(path) == model


@pytest.mark.parametrize(
    "path",
    [
        "/v1/realtime?model=sk-proj-abcDEF1234567890xyz",
        "/v1/realtime?model=x%20Authorization:%20Bearer%20opaque-secret-42",
        "/openai/realtime?deployment=api-key%3Dopaque-secret-42",
    ],
)
def test_a_model_name_from_the_url_holds_no_secret(path: str):
    model = protocol.model_from_path(path)
    assert model is not None
    assert "[REDACTED]" in model
    assert "abcDEF" not in model
    assert "opaque-secret" not in model


def test_model_names_are_cut_to_64_characters():
    assert protocol.model_from_path("/v1/realtime?model=" + "m" * 10_000) == "m" * 64
    recorder = SessionRecorder(SessionOpened("s", None, "ga", "/v1/realtime", "full"))  # type: ignore[arg-type]
    created = {"type": "session.created", "session": {"id": "sess_1", "model": "g" * 10_000}}
    (_, changed) = recorder.on_message(False, orjson.dumps(created), True, 1.0)
    assert isinstance(changed, SessionChanged)
    assert changed.model == recorder.model == "g" * 64


PRICES = PriceTable(BUILTIN_PRICES).merged({"my-own-model": Price(text_input=1.0)})


@pytest.mark.parametrize(
    ("model", "reported", "label"),
    [
        ("gpt-realtime", (), "gpt-realtime"),
        ("gpt-4o-realtime-preview-2024-10-01", (), "gpt-4o-realtime-preview-2024-10-01"),
        ("gpt-realtime-2025-08-28", (), "gpt-realtime"),  # priced through its base model
        ("gpt-realtime-2025-08-28", ("gpt-realtime-2025-08-28",), "gpt-realtime-2025-08-28"),
        ("my-own-model", (), "my-own-model"),  # from --pricing
        ("whisper-1", (), "whisper-1"),
        ("made-up-model-1", (), "other"),
        ("gpt-realtime-9999", (), "other"),
        ("my-azure-deployment", ("my-azure-deployment",), "my-azure-deployment"),
        (None, (), "unknown"),
        ("", (), "unknown"),
        ("unknown", (), "unknown"),
    ],
)
def test_metric_model_labels_are_bounded(model: str | None, reported: tuple[str], label: str):
    assert protocol.metric_model(model, PRICES, reported) == label


def test_models_the_server_reports_become_labels():
    opened = SessionOpened("s", None, "ga", "/v1/realtime?model=x", "full", model="x")  # type: ignore[arg-type]
    recorder = SessionRecorder(opened)
    assert recorder.metric_model == "other"  # only the client named it
    session = {
        "model": "gpt-realtime-2025-08-28",
        "audio": {"input": {"transcription": {"model": "gpt-live-transcribe"}}},
    }
    recorder.on_message(
        False, orjson.dumps({"type": "session.created", "session": session}), True, 1.0
    )
    assert recorder.metric_model == "gpt-realtime-2025-08-28"
    assert recorder.reported_models == {"gpt-realtime-2025-08-28", "gpt-live-transcribe"}


def test_models_a_client_names_are_not_reported():
    recorder = SessionRecorder(SessionOpened("s", None, "ga", "/v1/realtime", "full"))  # type: ignore[arg-type]
    update = {
        "type": "session.update",
        "session": {"model": "z", "audio": {"input": {"transcription": {"model": "t"}}}},
    }
    recorder.on_message(True, orjson.dumps(update), True, 1.0)
    assert recorder.reported_models == set()


def test_beta_detection():
    assert protocol.is_beta({"openai-beta": "realtime=v1"}, [])
    assert protocol.is_beta({}, ["realtime", "openai-beta.realtime-v1"])
    assert not protocol.is_beta({"openai-beta": "assistants=v2"}, ["realtime"])


def test_fixtures_dir_exists():
    assert Path(FIXTURES_DIR, "ga.jsonl").is_file()


def test_a_message_that_could_not_be_interpreted_keeps_its_place_in_the_sequence():
    opened = SessionOpened("s", datetime.now(UTC), "ga", "/v1/realtime", "full")
    session = SessionRecorder(opened)
    session.on_message(True, b'{"type":"a"}', True, 1.0)
    row = session.unparsed(False, b"xyz", 2.0)
    (after, *_) = session.on_message(True, b'{"type":"b"}', True, 3.0)
    assert (row.seq, row.type, row.size_bytes, row.direction) == (1, "invalid", 3, "server")
    assert isinstance(after, EventRecord)
    assert after.seq == 2


def test_the_conversation_builder_handles_exactly_the_events_storage_loads_for_it():
    assert set(conversation.HANDLERS) == protocol.CONVERSATION_EVENT_TYPES


@pytest.mark.parametrize(
    ("ga", "beta"),
    [
        ("conversation.item.added", "conversation.item.created"),
        ("response.output_audio.delta", "response.audio.delta"),
        ("response.output_text.done", "response.text.done"),
        ("response.output_audio_transcript.done", "response.audio_transcript.done"),
    ],
)
def test_beta_names_map_to_their_ga_names(ga, beta):
    assert protocol.with_beta(ga) == (ga, beta)
    assert protocol.ga_type(beta) == ga
    assert protocol.ga_type(ga) == ga


def test_every_alias_is_a_known_event_type():
    aliases = set(protocol.BETA_TO_GA) | set(protocol.BETA_TO_GA.values())
    assert aliases <= protocol.KNOWN_EVENT_TYPES


@pytest.mark.parametrize(
    ("event_type", "folded"),
    [
        ("response.output_audio.delta", True),
        ("input_audio_buffer.append", True),
        ("session.input_audio.append", True),
        ("response.done", False),
        ("input_audio_buffer.commit", False),
    ],
)
def test_streamed_chunks_are_deltas_and_audio_appends(event_type, folded):
    assert protocol.is_streamed_chunk(event_type) is folded
