"""The recorder's and writer's short cuts store exactly what the generic paths store."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from recorder import session as session_module
from recorder.live_session import LiveSessionRecorder
from recorder.session import SessionRecorder, without_first
from storage import apply, audio_segments
from storage.apply import apply_records
from storage.db import make_engine, upgrade
from storage.hot_inserts import AUDIO_COLUMNS, EVENT_COLUMNS, decode_audio, sqlite_datetime
from storage.models import AudioChunk, Event, Response, table
from storage.records import (
    AudioRecord,
    EventRecord,
    Record,
    ResponseCreated,
    ResponseDone,
    SessionOpened,
)
from tests.support.fixtures import fixture_lines

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AUDIO = base64.b64encode(bytes(range(256)) * 4).decode()
# GPT-Live (/work/shared/reference/gpt-live.md): appends both ways, deltas, padding, odd audio.
LIVE_STREAM: list[tuple[bool, dict[str, Any]]] = [
    (True, {"type": "session.start", "session": {"model": "gpt-live-1"}}),
    (True, {"type": "session.input_audio.append", "audio": AUDIO}),
    (False, {"type": "session.input_audio.append", "audio": AUDIO, "obfuscation": "xyz"}),
    (False, {"type": "session.output_audio.delta", "delta": AUDIO, "start_ms": 0}),
    (False, {"type": "session.input_transcript.delta", "delta": "hello", "end_ms": 40}),
    (False, {"type": "session.output_audio.delta", "delta": 12}),  # not audio: kept as is
    (True, {"type": "session.input_audio.append", "audio": AUDIO + "sk-" + AUDIO[:8]}),
    (True, {"type": "session.output_audio.fixture.play", "audio": AUDIO}),
    (False, {"type": "session.output_transcript.delta", "delta": "hi", "obfuscation": "ab"}),
    (False, {"type": "session.output_transcript.delta", "delta": "hi", "audio": AUDIO}),
]


def ga_stream() -> list[tuple[bool, dict[str, Any]]]:
    lines = fixture_lines("ga.jsonl") + fixture_lines("beta.jsonl")
    return [(line["direction"] == "client", line["event"]) for line in lines]


def frames(stream: list[tuple[bool, dict[str, Any]]]) -> Iterator[tuple[bool, bytes]]:
    for from_client, event in stream:
        yield from_client, orjson.dumps(event)
    # base64's `/` written as the JSON escape `\/`: the raw frame does not hold the audio as is
    escaped = orjson.dumps({"type": "input_audio_buffer.append", "audio": AUDIO})
    yield True, escaped.replace(b"/", b"\\/")
    # a text delta that carries an `audio` string: the generic path takes it as the event's audio
    yield False, orjson.dumps({"type": "response.output_text.delta", "delta": "x", "audio": AUDIO})


def records_of(recorder: SessionRecorder, stream: list[tuple[bool, dict[str, Any]]]) -> list[Any]:
    records: list[Record] = []
    for index, (from_client, content) in enumerate(frames(stream)):
        records.extend(recorder.on_message(from_client, content, True, 1.8e9 + index / 50))
    return records


def make(api: str, mode: str, session_id: str = "s1") -> SessionRecorder:
    path = "/v1/live/sessions" if api == "live" else "/v1/realtime"
    opened = SessionOpened(session_id, NOW, api, path, mode)
    kind = LiveSessionRecorder if api == "live" else SessionRecorder
    return kind(opened, record_mode=mode)


def generic_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The interpreter without its short cuts: every event through `strip_payload` and
    `bytes.replace`, as before they were written."""
    monkeypatch.setattr(session_module, "_OWN_AUDIO_FIELD", {})
    monkeypatch.setattr(session_module, "_TEXT_DELTAS", frozenset())
    monkeypatch.setattr(session_module, "without_first", lambda c, p: c.replace(p, b"", 1))


@pytest.mark.parametrize("mode", ["full", "text", "metadata"])
@pytest.mark.parametrize("api", ["ga", "live"])
def test_the_interpreters_short_cuts_make_the_same_records(
    api: str, mode: str, monkeypatch: pytest.MonkeyPatch
):
    stream = LIVE_STREAM if api == "live" else ga_stream()
    fast = records_of(make(api, mode), stream)
    generic_paths(monkeypatch)
    assert records_of(make(api, mode), stream) == fast
    assert len(fast) > len(stream)  # audio, responses, limits too, not only events


@given(st.binary(max_size=60), st.binary(max_size=40))
def test_without_first_removes_what_replace_removes(content: bytes, part: bytes):
    for whole in (content, content + part, part + content + part, content[:5] + part + content):
        assert without_first(whole, part) == whole.replace(part, b"", 1)


@pytest.mark.parametrize(
    "text", ["QUJD", "QUI=", "QUI", "QUJD=", "QUJD====", "=QUJD", "QU JD", "QUJD\n", "", "é"]
)
def test_audio_decodes_as_the_stdlibs_strict_mode_decides(text: str):
    try:
        expected: bytes | None = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        expected = None
    assert decode_audio(text) == expected


AUDIO_TEXTS = st.one_of(
    st.binary(max_size=30).map(lambda data: base64.b64encode(data).decode()),
    st.sampled_from(["QUI=", "QUI", "QUJD=", "QU JD", "QUJD\n", "", "é", "QU=D"]),
)


@given(st.lists(st.tuples(st.sampled_from(["s1", "s2"]), AUDIO_TEXTS, st.booleans()), max_size=12))
def test_audio_decoded_segment_by_segment_makes_the_rows_chunk_by_chunk_makes(
    chunks: list[tuple[str, str, bool]],
):
    records = [
        AudioRecord(
            session_id=session_id,
            seq=seq,
            ts=NOW + timedelta(milliseconds=seq),
            direction="server",
            audio_format="pcm16",
            sample_rate=24_000,
            audio_base64=text,
            response_id="r2" if other_response else "r1",
        )
        for seq, (session_id, text, other_response) in enumerate(chunks)
    ]
    by_chunk = audio_segments.merge(apply._decoded(records))
    by_segment = audio_segments.merge_base64(records)
    if all(len(text) % 4 == 0 and "=" not in text and text.isascii() for _, text, _ in chunks):
        assert by_segment is not None or any(decode_audio(r.audio_base64) is None for r in records)
    assert by_segment is None or by_segment == by_chunk


def stored(engine: Engine, session_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every event, audio and response row of a session, without row ids and the session id."""
    rows = {}
    with engine.connect() as connection:
        for model in (Event, AudioChunk, Response):
            target = table(model)
            columns = [c for c in target.columns if c.name not in ("id", "session_id")]
            query = select(*columns).where(target.c.session_id == session_id)
            rows[model.__tablename__] = sorted(
                (tuple(row) for row in connection.execute(query)), key=repr
            )
    return rows


def recorded_batch(session_id: str, created: bool = True) -> list[Record]:
    """The fixture streams' records; without `created`, as if every response.created was lost."""
    recorder = make("ga", "full", session_id)
    records = [recorder.opened, *records_of(recorder, ga_stream())]
    return [r for r in records if created or not isinstance(r, ResponseCreated)]


@given(st.lists(st.datetimes(timezones=st.just(UTC)), min_size=1, max_size=20))
def test_sqlite_timestamps_are_the_text_of_each_datetime_whatever_came_before(
    values: list[datetime],
):
    # The text of the last second is kept: a datetime in another day, month or year with the
    # same time of day must not reuse it.
    for value in [*values, *(v.replace(year=v.year % 9999 + 1) for v in values)]:
        assert sqlite_datetime(value) == value.replace(tzinfo=None).isoformat(" ", "microseconds")


@pytest.mark.parametrize("created", [True, False])
def test_driver_inserts_store_the_same_rows_as_sqlalchemy_core(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, created: bool
):
    with engine.begin() as connection:
        apply_records(connection, recorded_batch("fast", created))
    monkeypatch.setattr("storage.apply.EVENT_INSERTS", {})
    monkeypatch.setattr("storage.apply.AUDIO_INSERTS", {})
    monkeypatch.setattr("storage.apply._batchable", lambda done: False)  # one UPDATE each
    with engine.begin() as connection:
        apply_records(connection, recorded_batch("core", created))
    fast = stored(engine, "fast")
    assert fast == stored(engine, "core")
    assert len(fast["events"]) == 175
    assert fast["audio_chunks"]
    assert len(fast["responses"]) == 7
    assert all(row[-1] is None for row in fast["responses"])  # delegation_id: never set here


def test_a_response_done_twice_in_one_batch_keeps_the_last(engine: Engine):
    batch = recorded_batch("s1")
    done = [r for r in batch if isinstance(r, ResponseDone)]
    again = dataclasses.replace(done[0], status="incomplete", cost_usd=1.5)
    with engine.begin() as connection:
        apply_records(connection, [*batch, again])
    names = [c.name for c in table(Response).columns if c.name not in ("id", "session_id")]
    rows = [dict(zip(names, row, strict=True)) for row in stored(engine, "s1")["responses"]]
    changed = [row for row in rows if row["response_id"] == done[0].response_id]
    assert [(row["status"], row["cost_usd"]) for row in changed] == [("incomplete", 1.5)]
    assert len(rows) == 7


def shifted(records: list[EventRecord | AudioRecord], seqs: int) -> list[EventRecord | AudioRecord]:
    """The same events and audio, `seqs` later: new rows."""
    return [
        dataclasses.replace(r, seq=r.seq + seqs, ts=r.ts + timedelta(seconds=60)) for r in records
    ]


def test_a_postgresql_copy_that_meets_stored_rows_stores_each_row_once(postgres_db_url: str):
    engine = make_engine(postgres_db_url)
    upgrade(engine)
    batch = recorded_batch("s1")
    first = [r for r in batch if isinstance(r, EventRecord | AudioRecord)]
    with engine.begin() as connection:
        apply_records(connection, [batch[0], *first])
    once = stored(engine, "s1")
    with engine.begin() as connection:  # a batch retried after a lost acknowledgement
        apply_records(connection, first)
    assert stored(engine, "s1") == once
    later = shifted(first, 1000)
    new_events = [r for r in later if isinstance(r, EventRecord)]
    with engine.begin() as connection:  # half stored, half new: the new half is kept
        apply_records(connection, [*first, *new_events])
    with engine.begin() as connection:
        apply_records(connection, [r for r in later if isinstance(r, AudioRecord)])
    twice = stored(engine, "s1")
    assert len(twice["events"]) == 2 * len(once["events"])
    assert len(twice["audio_chunks"]) == 2 * len(once["audio_chunks"])
    assert set(map(repr, once["events"])) < set(map(repr, twice["events"]))
    engine.dispose()


def test_the_driver_inserts_name_every_column_but_the_row_id():
    for model, columns in ((Event, EVENT_COLUMNS), (AudioChunk, AUDIO_COLUMNS)):
        assert sorted(columns) == sorted(c.name for c in table(model).columns if c.name != "id")


# Text that COPY's text format would escape, and values past what orjson writes.
AWKWARD_PAYLOADS: list[Any] = [
    {"type": "x", "text": 'quote " backslash \\ tab \t newline \n return \r'},
    {"type": "x", "text": "\\N \\. \x01 \x7f é 日本 😀", "nested": [[1, [2.5, None]], {"k": ""}]},
    {"type": "x", "big": 2**70, "small": -(2**63)},
    {"type": "x", "n": float("nan"), "inf": [float("inf")]},
    ["not", "an", "object"],
    "a JSON string",
]


def test_awkward_payloads_take_the_driver_inserts_as_they_take_sqlalchemy_core(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    def batch(session_id: str) -> list[Record]:
        opened = make("ga", "full", session_id).opened
        events = [
            EventRecord(session_id, seq, NOW, "client", "x", 10, payload=payload)
            for seq, payload in enumerate(AWKWARD_PAYLOADS)
        ]
        return [opened, *events]

    with engine.begin() as connection:
        apply_records(connection, batch("fast"))
    monkeypatch.setattr("storage.apply.EVENT_INSERTS", {})
    with engine.begin() as connection:
        apply_records(connection, batch("core"))
    fast = stored(engine, "fast")["events"]
    assert fast == stored(engine, "core")["events"]
    with engine.connect() as connection:
        query = select(Event.payload).where(Event.session_id == "fast").order_by(Event.seq)
        payloads = list(connection.scalars(query))
    nan = {"type": "x", "n": "NaN", "inf": ["Infinity"]}  # kept as text: docs/schema.md
    assert payloads == [*AWKWARD_PAYLOADS[:3], nan, *AWKWARD_PAYLOADS[4:]]
