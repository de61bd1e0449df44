"""`--record text` and `metadata` keep no base64 audio, wherever an event can carry it."""

from __future__ import annotations

import base64
import io
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

import protocol
from analysis import export
from protocol.audio import is_audio_delta
from recorder.session import SessionRecorder
from storage import detail
from storage.models import Base
from storage.records import AudioRecord, EventRecord, Record, SessionOpened
from storage.writer import Writer

AUDIO = base64.b64encode(bytes(range(7, 247))).decode()
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def recorder(mode: str, session_id: str = "s1") -> SessionRecorder:
    return SessionRecorder(SessionOpened(session_id, NOW, "ga", "/v1/realtime", mode), mode)


def recorded(mode: str, event: dict[str, Any], from_client: bool = True) -> list[Record]:
    return recorder(mode).on_message(from_client, orjson.dumps(event), True, 0.0)


# Where the SDK's types (openai 3.57, types/realtime and types/live) carry base64 audio.
USER_AUDIO_ITEM = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_audio", "audio": AUDIO, "transcript": "hi"}],
}
ASSISTANT_AUDIO_ITEM = {
    "type": "message",
    "role": "assistant",
    "content": [{"type": "output_audio", "audio": AUDIO, "transcript": "hello"}],
}
AUDIO_EVENTS = [
    (True, {"type": "conversation.item.create", "item": USER_AUDIO_ITEM}),
    (
        True,
        {
            "type": "conversation.item.create",
            "item": {**USER_AUDIO_ITEM, "content": [{"type": "input_audio", "audio": AUDIO}]},
        },
    ),
    (False, {"type": "conversation.item.added", "item": USER_AUDIO_ITEM}),
    (False, {"type": "conversation.item.done", "item": ASSISTANT_AUDIO_ITEM}),
    (False, {"type": "conversation.item.created", "item": ASSISTANT_AUDIO_ITEM}),
    (False, {"type": "conversation.item.retrieved", "item": USER_AUDIO_ITEM}),
    (False, {"type": "response.output_item.done", "item": ASSISTANT_AUDIO_ITEM}),
    (False, {"type": "response.content_part.done", "part": {"type": "audio", "audio": AUDIO}}),
    (False, {"type": "response.done", "response": {"id": "r1", "output": [ASSISTANT_AUDIO_ITEM]}}),
    (True, {"type": "input_audio_buffer.append", "audio": AUDIO}),
    (False, {"type": "response.output_audio.delta", "delta": AUDIO}),
    (False, {"type": "response.audio.delta", "delta": AUDIO}),
    # GPT-Live (docs: /work/shared/reference/gpt-live.md): appends both ways, deltas, fixtures.
    (True, {"type": "session.input_audio.append", "audio": AUDIO}),
    (False, {"type": "session.input_audio.append", "audio": AUDIO}),
    (False, {"type": "session.output_audio.delta", "delta": AUDIO, "start_ms": 0}),
    (True, {"type": "session.output_audio.fixture.play", "audio": AUDIO}),
]


@pytest.mark.parametrize("mode", ["text", "metadata"])
@pytest.mark.parametrize(("from_client", "event"), AUDIO_EVENTS)
def test_no_audio_is_kept_in_text_or_metadata_mode(
    mode: str, from_client: bool, event: dict[str, Any]
):
    records = recorded(mode, event, from_client)
    assert AUDIO not in repr(records)
    assert not any(isinstance(r, AudioRecord) for r in records)


@pytest.mark.parametrize(("from_client", "event"), AUDIO_EVENTS)
def test_text_mode_keeps_the_rest_of_the_event(from_client: bool, event: dict[str, Any]):
    first = recorded("text", event, from_client)[0]
    assert isinstance(first, EventRecord)
    assert first.payload["type"] == event["type"]
    assert str(len(base64.b64decode(AUDIO))) in orjson.dumps(first.payload).decode()


def test_full_mode_keeps_an_items_audio_in_its_payload():
    first = recorded("full", {"type": "conversation.item.create", "item": USER_AUDIO_ITEM})[0]
    assert isinstance(first, EventRecord)
    assert first.payload["item"]["content"][0]["audio"] == AUDIO


@pytest.mark.parametrize(
    ("event_type", "is_audio"),
    [
        ("response.audio.delta", True),
        ("response.output_audio.delta", True),
        ("session.output_audio.delta", True),
        ("response.audio_transcript.delta", False),
        ("response.output_audio_transcript.delta", False),
        ("response.output_text.delta", False),
        ("session.output_transcript.delta", False),
        ("delta", False),
    ],
)
def test_audio_deltas_are_known_by_the_shape_of_their_name(event_type: str, is_audio: bool):
    assert is_audio_delta(event_type) is is_audio


def test_a_session_audio_configuration_is_not_audio():
    session = {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}}
    event = {"type": "session.update", "session": session}
    first = recorded("text", event)[0]
    assert isinstance(first, EventRecord)
    assert first.payload["session"] == session


def test_a_frame_that_is_not_an_event_keeps_no_audio_in_text_mode():
    records = recorded("text", {"type": 7, "item": USER_AUDIO_ITEM})
    assert AUDIO not in repr(records)


# --------------------------------------------------------------------------- property


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda name: name not in ("audio", "delta", "type")
)
fillers = st.one_of(st.none(), st.integers(-1000, 1000), st.text(alphabet="xyz ", max_size=6))
event_types = st.sampled_from(sorted(protocol.KNOWN_EVENT_TYPES)) | st.sampled_from(
    ["session.input_audio.append", "session.output_audio.fixture.play", "x.audio.delta", "zz"]
)


@st.composite
def events_with_audio(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An event with one base64 audio string somewhere: its own `delta`, or an `audio` field at
    any depth, in dicts and lists among other fields."""
    audio = base64.b64encode(draw(st.binary(min_size=24, max_size=120))).decode()
    event_type = draw(event_types)
    event: dict[str, Any] = {"type": event_type, **draw(st.dictionaries(names, fillers))}
    if is_audio_delta(event_type) and draw(st.booleans()):
        event["delta"] = audio
        return audio, event
    holder: Any = {"audio": audio, **draw(st.dictionaries(names, fillers, max_size=2))}
    for step in draw(st.lists(names | st.integers(0, 2), max_size=5)):
        holder = [*([None] * step), holder] if isinstance(step, int) else {step: holder}
    event[draw(names)] = holder
    return audio, event


def stored_text(engine: Engine, session_id: str) -> str:
    """Every row of every table, and the session's JSONL export, as one text to search."""
    with engine.connect() as connection:
        rows = [
            repr(row)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(select(table))
        ]
        out = io.BytesIO()
        export.write_jsonl(out, detail.session_events(connection, session_id))
    return "\n".join(rows) + out.getvalue().decode()


@pytest.mark.parametrize("mode", ["text", "metadata"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cases=st.lists(st.tuples(st.booleans(), events_with_audio()), min_size=1, max_size=4))
def test_no_base64_audio_reaches_storage_logs_or_exports(
    engine: Engine, caplog: pytest.LogCaptureFixture, mode: str, cases: list[Any]
):
    caplog.set_level(logging.DEBUG)
    session = recorder(mode, str(uuid.uuid4()))
    writer = Writer(engine, flush_interval_s=0.01)
    writer.start()
    writer.submit([session.opened])
    for from_client, (_, event) in cases:
        writer.submit(session.on_message(from_client, orjson.dumps(event), True, 1.0))
    writer.close()
    everything = stored_text(engine, session.id) + caplog.text
    for _, (audio, _) in cases:
        assert audio not in everything
        assert audio[:16] not in everything
