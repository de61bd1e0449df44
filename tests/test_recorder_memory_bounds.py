"""The recorder's queue and the writer's batches are bounded in bytes; overflow is counted."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from websockets.frames import Frame, Opcode

from handover import wire as handover
from handover.resend import RESEND_LIMIT_BYTES
from handover.wire import Item
from protocol.pricing import BUILTIN_PRICES, PriceTable
from recorder.metrics import Metrics
from recorder.recording import Recording
from storage.records import EventRecord, SessionOpened
from storage.writer import MAX_BATCH_BYTES, QUEUE_LIMIT_BYTES, Writer
from tests.support.writer_observer import WriterTally

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
AUDIO_DELTA_BYTES = 6_000  # about one voice message of the benchmarks' mix
MIB = 1024 * 1024


def opened(session_id: str) -> SessionOpened:
    return SessionOpened(session_id, NOW, "ga", "/v1/realtime", "full", model="gpt-realtime")


def event(seq: int, size_bytes: int) -> EventRecord:
    return EventRecord("s1", seq, NOW, "server", "response.output_audio.delta", size_bytes)


def audio_delta_frame(number: int) -> bytes:
    """One server frame of `response.output_audio.delta`, as the raw relay hands it over."""
    audio = base64.b64encode(bytes(AUDIO_DELTA_BYTES * 3 // 4)).decode()
    body = orjson.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": f"event_{number}",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": audio,
        }
    )
    return Frame(Opcode.TEXT, body).serialize(mask=False, extensions=[])


@pytest.fixture
def idle_recording(engine: Engine) -> Iterator[Recording]:
    """A recorder whose writer thread is not running: nothing drains its queue, as when the
    database is slower than a blast; the writer is configured as `recorder.main` does."""
    metrics = Metrics(CollectorRegistry())
    writer = Writer(engine, queue_size=100_000, observer=metrics)
    yield Recording(writer, metrics, PriceTable(BUILTIN_PRICES))
    writer.close(timeout_s=0.1)


def open_raw_session(recording: Recording) -> None:
    fields = {
        "id": "s1",
        "started_at": time.time(),
        "api": "ga",
        "path": "/v1/realtime",
        "record_mode": "full",
        "raw": True,
    }
    recording.handle(1, Item(handover.OPEN, 0, 1, 0, time.time(), orjson.dumps(fields)))


def queue_full_drops(recording: Recording) -> float:
    value = recording.metrics.registry.get_sample_value(
        "openai_realtime_recorder_dropped_events_total", {"reason": "queue_full"}
    )
    return value or 0.0


def test_a_voice_blast_fills_the_recorder_queue_up_to_its_bytes_and_counts_the_rest(
    idle_recording: Recording,
):
    # A bound's worth of voice messages and 200 more (~11,000) are far below --queue-size's
    # 100,000 messages: bounded in messages alone, the queue took them all (100,000: ~600 MB).
    open_raw_session(idle_recording)
    count = QUEUE_LIMIT_BYTES // len(audio_delta_frame(0)) + 200
    frames = [audio_delta_frame(number) for number in range(count)]
    for seq, frame in enumerate(frames, start=1):
        idle_recording.handle(1, Item(handover.RAW, 0, 1, seq, time.time(), frame))
    writer = idle_recording.writer
    queued_messages = writer.depth - 1  # the session's open is queued too
    # Filled to the bound, not shed early, and past it by one message at most.
    assert QUEUE_LIMIT_BYTES <= writer.depth_bytes < QUEUE_LIMIT_BYTES + len(frames[0])
    assert queue_full_drops(idle_recording) == len(frames) - queued_messages


def test_bytes_leave_the_bound_once_written_and_the_queue_takes_messages_again(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, queue_limit_bytes=10_000, observer=observer, flush_interval_s=0.01)
    assert writer.submit([opened("s1")])
    assert writer.submit([event(0, 4_000)])
    assert writer.submit([event(1, 4_000)])
    assert writer.submit([event(2, 4_000)])  # 8,000 queued: room until the bound is reached
    assert not writer.submit([event(3, 1)])
    assert writer.depth_bytes == 12_000
    assert observer.drops == {"queue_full": 1}
    writer.start()
    assert writer.flush(timeout_s=10)
    assert writer.depth_bytes == 0
    assert writer.submit([event(4, 10_000)])
    writer.close()
    assert sum(observer.batches) == 5  # the open and the four events kept


def test_a_message_larger_than_the_bound_enters_a_queue_below_it(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, queue_limit_bytes=10_000, observer=observer)  # not started
    assert writer.submit([opened("s1")])  # no event: no bytes
    assert writer.submit([event(0, 9_000)])
    assert writer.submit([event(1, 15 * MIB)])  # an append of the API's largest audio
    assert not writer.submit([event(2, 1)])
    assert observer.drops == {"queue_full": 1}
    writer.close(timeout_s=0.1)


def test_a_batch_stops_filling_at_its_bytes(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, queue_limit_bytes=64 * MIB, observer=observer, flush_interval_s=0.5)
    half = MAX_BATCH_BYTES // 2
    writer.submit([opened("s1")])
    for seq in range(6):
        writer.submit([event(seq, half)])
    writer.start()  # everything is queued before the first batch is collected
    assert writer.flush(timeout_s=10)
    writer.close()
    # Each batch ends once it reaches MAX_BATCH_BYTES: the open and two events, then two and
    # two (bounded by records alone, it was one batch of seven).
    assert observer.batches == [3, 2, 2]


def test_the_recorder_queue_holds_what_four_relays_keep_unacknowledged():
    # Each relay keeps what its recorder has not committed, up to its bound: a recorder queue
    # smaller than that dropped a 39 MB burst of appends a single relay had kept.
    assert QUEUE_LIMIT_BYTES >= 4 * RESEND_LIMIT_BYTES
