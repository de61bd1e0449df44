"""The writer's accounting: session records never shed, bounded shutdown, idempotent retries."""

from __future__ import annotations

import base64
import logging
import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select

from analysis.export import conversation_audio
from storage import detail
from storage.apply import apply_records
from storage.db import DatabaseURLError, make_engine, upgrade
from storage.models import (
    AudioChunk,
    Event,
    RateLimit,
    RealtimeSession,
    Response,
    Transcription,
    table,
)
from storage.records import (
    AudioRecord,
    EventRecord,
    RateLimitRecord,
    Record,
    ResponseCreated,
    ResponseDone,
    SessionChanged,
    SessionClosed,
    SessionOpened,
    TranscriptionRecord,
)
from storage.writer import Writer
from tests.pgserver import PostgresServer
from tests.support.writer_observer import WriterTally

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def opened(session_id: str) -> SessionOpened:
    return SessionOpened(session_id, NOW, "ga", "/v1/realtime", "full", model="gpt-realtime")


def closed(session_id: str) -> SessionClosed:
    return SessionClosed(session_id, NOW, 1000, None, "client")


def event(seq: int, session_id: str) -> EventRecord:
    return EventRecord(session_id, seq, NOW, "server", "x", 10)


def stored_events(engine: Engine) -> list[tuple[str, int]]:
    events = table(Event)
    with engine.connect() as connection:
        query = select(events.c.session_id, events.c.seq).order_by(
            events.c.session_id, events.c.seq
        )
        return [(row.session_id, row.seq) for row in connection.execute(query)]


def test_capacity_is_the_queue_size_and_depth_counts_queued_messages(engine: Engine):
    # The queue_capacity gauge: the bound `submit` enforces (it once read the unbounded
    # underlying queue's maxsize, 0).
    writer = Writer(engine, queue_size=3)  # not started: nothing drains
    assert writer.capacity == 3
    writer.submit([event(0, "s1")])
    writer.submit([event(1, "s1"), event(2, "s1")])
    assert writer.depth == 2


def test_a_marker_someone_waits_for_is_committed_without_waiting_out_the_interval(
    engine: Engine,
):
    # A relay short of room sends nothing until it is acknowledged: waiting for more records
    # until the flush interval ends only idles both (0.25 s per batch in the voice benchmark).
    writer = Writer(engine, flush_interval_s=30.0)
    writer.start()
    try:
        writer.submit([opened("s1")])
        writer.submit([event(0, "s1")])
        lazy, soon = threading.Event(), threading.Event()
        writer.mark(lazy.set)
        assert not lazy.wait(0.5)  # batched: it waits for more, up to the interval
        writer.mark(soon.set, soon=True)
        assert soon.wait(10.0)
        assert lazy.is_set()
        assert stored_events(engine) == [("s1", 0)]
    finally:
        writer.close()


def test_full_queue_keeps_session_records_and_sheds_only_messages(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, queue_size=3, observer=observer)  # not started: nothing drains
    assert writer.submit([opened("s1")])
    assert writer.submit([event(0, "s1")])
    assert writer.submit([event(1, "s1")])
    assert writer.submit([opened("s2")])  # the queue is full: the reserved room takes it
    assert not writer.submit([event(0, "s2")])
    assert not writer.submit([event(1, "s2"), SessionChanged("s2", model="gpt-realtime-mini")])
    assert writer.submit([closed("s1")])
    writer.start()
    assert writer.flush(timeout_s=10)
    assert writer.submit([event(2, "s2")])  # later events of s2 find their session row
    writer.close()
    sessions = table(RealtimeSession)
    with engine.connect() as connection:
        rows = {r.id: r for r in connection.execute(select(sessions))}
    assert rows["s1"].ended_at is not None
    assert rows["s2"].model == "gpt-realtime-mini"
    assert stored_events(engine) == [("s1", 0), ("s1", 1), ("s2", 2)]
    assert observer.drops == {"queue_full": 2}
    assert observer.db_errors == 0


def test_full_queue_drops_are_logged_once_per_interval_with_their_count(
    engine: Engine, caplog: pytest.LogCaptureFixture
):
    writer = Writer(engine, queue_size=1)  # not started: nothing drains
    writer.submit([event(0, "s1")])
    with caplog.at_level(logging.WARNING, logger="storage.writer"):
        for seq in range(1, 6):
            writer.submit([event(seq, "s1")])
    drops = [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()]
    assert drops == ["recorder queue full: dropped 1 message(s) (1 event(s)) since the last report"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="storage.writer"):
        writer.close(timeout_s=1)
    drops = [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()]
    assert drops == ["recorder queue full: dropped 4 message(s) (4 event(s)) since the last report"]


def test_shutdown_during_a_sqlite_lock_gives_up_in_time_and_counts_every_event(
    sqlite_db_url: str, caplog: pytest.LogCaptureFixture
):
    engine = make_engine(sqlite_db_url)
    upgrade(engine)
    blocker = make_engine(sqlite_db_url).connect()
    blocker.exec_driver_sql("BEGIN EXCLUSIVE")
    observer = WriterTally()
    # A queue smaller than the backlog: close() must still find room and never raise queue.Full.
    writer = Writer(make_engine(sqlite_db_url), queue_size=20, observer=observer)
    writer.start()
    writer.submit([opened("s1")])
    for seq in range(50):
        writer.submit([event(seq, "s1")])
    with caplog.at_level(logging.ERROR, logger="storage.writer"):
        writer.close(timeout_s=1.0, drain_limit_s=1.0)
    blocker.rollback()
    blocker.close()
    assert not writer.alive
    assert stored_events(engine) == []
    assert set(observer.drops) <= {"queue_full", "db_unavailable"}
    assert sum(observer.drops.values()) == 50
    given_up = observer.drops["db_unavailable"]
    assert any(
        f"gave up on {given_up + 1} record(s)" in r.getMessage()
        and f"{given_up} EventRecord, 1 SessionOpened" in r.getMessage()
        for r in caplog.records
    )


def test_shutdown_during_a_postgres_outage_gives_up_in_time_and_counts_every_event(
    private_postgres: PostgresServer,
):
    db_url = private_postgres.create_database()
    upgrade(make_engine(db_url))
    observer = WriterTally()
    writer = Writer(make_engine(db_url), flush_interval_s=0.01, observer=observer)
    writer.start()
    writer.submit([opened("s1")])
    assert writer.flush(timeout_s=10)
    private_postgres.stop()
    for seq in range(30):
        writer.submit([event(seq, "s1")])
    writer.close(timeout_s=1.0, drain_limit_s=1.0)
    assert not writer.alive
    assert observer.drops == {"db_unavailable": 30}
    private_postgres.start()
    assert stored_events(make_engine(db_url)) == []


def one_of_each(session_id: str) -> list[Record]:
    """The records of a few messages, one of every kind the writer inserts."""
    audio = base64.b64encode(b"\x01\x02" * 100).decode()
    return [
        opened(session_id),
        event(0, session_id),
        ResponseCreated(session_id, "resp_1", NOW, "in_progress"),
        event(1, session_id),
        AudioRecord(session_id, 1, NOW, "server", "pcm16", 24000, audio, "resp_1", "item_1"),
        event(2, session_id),
        RateLimitRecord(session_id, NOW, "requests", 100, 99, 1.0),
        RateLimitRecord(session_id, NOW, "tokens", 1000, 900, 2.0),
        event(3, session_id),
        TranscriptionRecord(session_id, NOW, "item_0", "whisper-1", "hello", "tokens"),
        event(4, session_id),
        ResponseDone(session_id, "resp_1", NOW, "completed", usage={"total_tokens": 7}),
        closed(session_id),
    ]


def table_rows(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            model.__tablename__: sorted(
                (tuple(row) for row in connection.execute(select(table(model)))), key=repr
            )
            for model in (RealtimeSession, Event, Response, RateLimit, Transcription, AudioChunk)
        }


def test_applying_the_same_records_twice_stores_them_once(engine: Engine):
    records = one_of_each("s1")
    with engine.begin() as connection:
        apply_records(connection, records)
    once = table_rows(engine)
    with engine.begin() as connection:
        apply_records(connection, records)
    assert table_rows(engine) == once
    assert {name: len(rows) for name, rows in once.items()} == {
        "sessions": 1,
        "events": 5,
        "responses": 1,
        "rate_limits": 2,
        "transcriptions": 1,
        "audio_chunks": 1,
    }


class AckLostConnection(sqlite3.Connection):
    """Commits, then reports the connection lost, once: the acknowledgement that never came."""

    lose_next_ack = True

    def commit(self) -> None:
        super().commit()
        if AckLostConnection.lose_next_ack:
            AckLostConnection.lose_next_ack = False
            raise sqlite3.OperationalError("connection lost before the commit was acknowledged")


def test_a_batch_retried_after_a_lost_commit_acknowledgement_is_stored_once(
    sqlite_db_url: str,
):
    upgrade(make_engine(sqlite_db_url))
    engine = create_engine(sqlite_db_url, connect_args={"factory": AckLostConnection})
    observer = WriterTally()
    writer = Writer(engine, observer=observer)
    records = one_of_each("s1")
    AckLostConnection.lose_next_ack = True
    writer.submit(records)
    writer.start()
    writer.close()
    assert not AckLostConnection.lose_next_ack  # the commit did report a failure
    assert observer.db_errors == 1
    assert observer.drops == {}  # recorded + dropped == relayed: 5 + 0 == 5
    assert stored_events(engine) == [("s1", seq) for seq in range(5)]
    assert {name: len(rows) for name, rows in table_rows(engine).items()}["rate_limits"] == 2


def test_nan_and_infinities_are_kept_as_text_on_every_database(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, observer=observer)
    writer.start()
    writer.submit([opened("s1")])
    odd = {"type": "x", "n": float("nan"), "m": [float("-inf")], "p": float("inf"), "z": None}
    writer.submit([EventRecord("s1", 0, NOW, "client", "x", 10, payload=odd)])
    big = {"type": "x", "n": float("nan"), "big": 2**70}
    writer.submit([EventRecord("s1", 1, NOW, "client", "x", 10, payload=big)])
    writer.close()
    events = table(Event)
    with engine.connect() as connection:
        payloads = list(
            connection.execute(select(events.c.payload).order_by(events.c.seq)).scalars()
        )
    assert payloads[0] == {"type": "x", "n": "NaN", "m": ["-Infinity"], "p": "Infinity", "z": None}
    assert payloads[1]["n"] == "NaN"
    assert payloads[1]["big"] in (2**70, str(2**70))
    assert observer.drops == {}
    assert observer.db_errors == 0  # no failed batch on the way: both paths write the same text


def test_write_errors_are_logged_without_the_recorded_content(
    engine: Engine, caplog: pytest.LogCaptureFixture
):
    observer = WriterTally()
    writer = Writer(engine, observer=observer)
    writer.start()
    secret = "my card number is 4111-1111-1111-1111"
    payload = {"type": "x", "text": secret}
    with caplog.at_level(logging.DEBUG):
        # no session row: the insert fails its foreign key, the batch and then the record alone
        writer.submit([EventRecord("nobody", 0, NOW, "client", "x", 10, payload=payload)])
        writer.close()
    assert observer.drops == {"db_error": 1}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "foreign key" in logged.lower()  # the reason is there, the content is not
    assert "4111" not in logged
    assert "parameters" not in logged


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://rtrec:hunter2@db.internal:notaport/rtrec",
        "postgresql+psycopg://rtrec:hunt@er2@[::1/rtrec",
        "rtrec:hunter2@db.internal/rtrec",
        "nosuchdb://rtrec:hunter2@db.internal/rtrec?password=hunter2",
    ],
)
def test_a_database_url_that_cannot_be_used_is_never_echoed_with_its_password(url: str):
    with pytest.raises(DatabaseURLError) as raised:
        make_engine(url)
    message = str(raised.value)
    assert "hunter2" not in message
    assert "er2" not in message
    assert "***" in message
    assert raised.value.__cause__ is None or "hunter2" not in str(raised.value.__cause__)


def relayed_audio(session_id: str) -> list[AudioRecord]:
    """Interleaved user and assistant chunks over two responses, 20 ms apart, as relayed."""
    records = []
    for seq in range(1, 41):
        direction = "client" if seq % 3 == 0 else "server"
        response_id = None if direction == "client" else f"resp_{seq // 20}"
        data = bytes([seq]) * (2 * (50 + seq))  # whole pcm16 samples
        ts = NOW + timedelta(milliseconds=20 * seq + seq % 7)
        records.append(
            AudioRecord(
                session_id,
                seq,
                ts,
                direction,
                "pcm16",
                24000,
                base64.b64encode(data).decode(),
                response_id,
            )
        )
    return records


def as_read(record: AudioRecord) -> dict[str, Any]:
    return {"seq": record.seq, "ts": record.ts, "data": base64.b64decode(record.audio_base64)}


def comparable(chunks: list[dict[str, Any]]) -> list[tuple[int, datetime, bytes]]:
    return [(c["seq"], c["ts"].replace(tzinfo=UTC), c["data"]) for c in chunks]


def test_audio_stored_as_segments_reads_back_chunk_by_chunk(engine: Engine):
    records = relayed_audio("s1")
    writer = Writer(engine, flush_interval_s=5.0)
    writer.submit([opened("s1")])
    for record in records:  # each chunk with its event, as the proxy submits them
        writer.submit([event(record.seq, "s1"), record])
    writer.start()
    writer.close()
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(table(AudioChunk))).scalar_one()
        user = detail.audio_chunks(connection, "s1", "client")
        assistant = detail.audio_chunks(connection, "s1", "server")
        middle = detail.audio_chunks(connection, "s1", "server", (10, 25), "resp_1")
        index = detail.audio_index(connection, "s1")
    assert rows < len(records)  # merged into segments
    expected = {d: [r for r in records if r.direction == d] for d in ("client", "server")}
    expected_chunks = {d: [as_read(r) for r in rs] for d, rs in expected.items()}
    assert comparable(user) == comparable(expected_chunks["client"])
    assert comparable(assistant) == comparable(expected_chunks["server"])
    assert [c["seq"] for c in middle] == [
        r.seq for r in expected["server"] if 10 <= r.seq <= 25 and r.response_id == "resp_1"
    ]
    assert [(c["seq"], c["direction"], c["size_bytes"]) for c in index] == [
        (r.seq, r.direction, len(base64.b64decode(r.audio_base64))) for r in records
    ]
    # the stereo export places every chunk at its relayed time, as with a row per chunk
    rate = {"audio_format": "pcm16", "sample_rate": 24000}
    as_relayed = [[{**chunk, **rate} for chunk in expected_chunks[d]] for d in ("client", "server")]
    assert conversation_audio(user, assistant) == conversation_audio(*as_relayed)


def test_audio_sent_again_after_a_recorder_restart_is_stored_once_chunk_by_chunk(engine: Engine):
    """A relay re-sends what a dead recorder had not acknowledged, some of it committed: from
    the first stored chunk (s1: merged under a stored segment's key, the new chunks would be
    skipped with it) or from a later one (s2: under a new key, stored chunks twice)."""
    first = Writer(engine, flush_interval_s=5.0)
    records = {session_id: relayed_audio(session_id) for session_id in ("s1", "s2")}
    for session_id, chunks in records.items():
        first.submit([opened(session_id)])
        for record in chunks[:10]:  # committed by the recorder that died
            first.submit([event(record.seq, session_id), record])
    first.start()
    first.close()
    again = Writer(engine, flush_interval_s=5.0)
    for session_id, replay_from in (("s1", 0), ("s2", 4)):
        for record in records[session_id][replay_from:]:
            again.submit([event(record.seq, session_id), record], replayed=True)
    again.start()
    again.close()
    with engine.connect() as connection:
        for session_id, chunks in records.items():
            stored = [
                chunk
                for direction in ("client", "server")
                for chunk in detail.audio_chunks(connection, session_id, direction)
            ]
            assert sorted(comparable(stored)) == comparable([as_read(r) for r in chunks])


def test_messages_that_cannot_be_sent_again_count_as_dropped_unless_stored(engine: Engine):
    """A restarted recorder cannot inflate what the dead one left unacknowledged of a deflated
    stream: those of its seqs whose event the dead one had committed are not dropped."""
    observer = WriterTally()
    writer = Writer(engine, flush_interval_s=0.01, observer=observer)
    writer.submit([opened("s1")])
    for seq in range(1, 6):
        writer.submit([event(seq, "s1")])
    writer.count_unless_stored("s1", list(range(3, 9)), "deflate_context")
    writer.start()
    writer.close()
    assert observer.drops == {"deflate_context": 3}  # 6, 7 and 8


def test_a_clean_close_leaves_every_row_in_the_sqlite_file_itself(
    sqlite_db_url: str, tmp_path: Path
):
    engine = make_engine(sqlite_db_url)
    upgrade(engine)
    writer = Writer(engine)
    writer.start()
    writer.submit([opened("s1")])
    for seq in range(300):
        writer.submit([event(seq, "s1")])
    writer.close()  # the engine keeps its connection open: SQLite alone would not checkpoint
    database = Path(sqlite_db_url.removeprefix("sqlite:///"))
    wal = database.with_name(database.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy" / "rtrec.db"
    copy.parent.mkdir()
    shutil.copyfile(database, copy)  # the file alone, as a user copying rtrec.db would
    assert len(stored_events(make_engine(f"sqlite:///{copy}", read_only=True))) == 300
    engine.dispose()


def test_records_submitted_after_close_are_refused_and_counted_as_no_writer(
    engine: Engine, caplog: pytest.LogCaptureFixture
):
    observer = WriterTally()
    writer = Writer(engine, observer=observer)
    writer.start()
    assert writer.submit([opened("s1"), event(0, "s1")])
    writer.close()
    assert not writer.submit([event(1, "s1")])
    assert not writer.submit([event(2, "s1"), closed("s1")])
    assert stored_events(engine) == [("s1", 0)]
    assert observer.drops == {"no_writer": 2}
    assert sum("no_writer" in r.getMessage() for r in caplog.records) == 1
