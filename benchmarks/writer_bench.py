"""Scenario 5: events per second `storage.writer.Writer` commits into SQLite or PostgreSQL.

Run as its own process (`python -m benchmarks.writer_bench --db URL --mix voice`); prints one
JSON object. The records are what the proxy makes: the benchmark traffic goes through
`recorder.session.SessionRecorder`, and each message's records are one `submit`, as in the addon.
The queue is filled first, then the writer thread drains it: the rate is what it sustains. The
CPU the interpreter spent making the records is reported apart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from benchmarks import traffic
from handover.ids import uuid7
from recorder.main import settle_gc
from recorder.session import SessionRecorder
from storage.db import make_engine, upgrade
from storage.records import EventRecord, Record, SessionOpened
from storage.writer import Writer

SESSIONS = 10


class _Counter:
    """Writer observer that counts what was committed and what was dropped."""

    def __init__(self) -> None:
        self.records = 0
        self.dropped = 0
        self.db_errors = 0

    def batch_written(self, records: int, seconds: float) -> None:
        self.records += records

    def dropped_records(self, reason: str, count: int) -> None:
        self.dropped += count

    def db_error(self) -> None:
        self.db_errors += 1


def _session_messages(mix: str) -> Iterator[tuple[bool, bytes]]:
    """(from_client, payload) of one session's messages in wire order."""
    client = traffic.client_event(mix)
    for index, rest in enumerate(traffic.server_events(mix)):
        stamp = time.monotonic_ns()
        if index % 37 in (0, 4, 8, 11, 15, 19, 22, 26, 30, 33):  # 10 appends per 37 events
            yield True, traffic.payload(client, stamp)
        yield False, traffic.payload(rest, stamp)


def message_records(mix: str, messages: int) -> list[Sequence[Record]]:
    """The records the proxy submits for `messages` messages spread over `SESSIONS` sessions."""
    submits: list[Sequence[Record]] = []
    recorders = []
    for _ in range(SESSIONS):
        opened = SessionOpened(
            id=uuid7(),
            started_at=datetime.now(UTC),
            api="ga",
            path=f"/v1/realtime?model={traffic.MODEL}",
            record_mode="full",
            model=traffic.MODEL,
            upstream="https://api.openai.com:443",
            client_addr="127.0.0.1:50000",
        )
        submits.append([opened])
        recorders.append((SessionRecorder(opened, record_mode="full"), _session_messages(mix)))
    for recorder, stream in itertools.islice(itertools.cycle(recorders), messages):
        from_client, payload = next(stream)
        submits.append(recorder.on_message(from_client, payload, True, time.time()))
    return submits


def _written_bytes() -> int:
    """Bytes this process has handed to write() so far (Linux): SQLite's WAL, its checkpoints
    into the database file and anything else; 0 where /proc is missing."""
    try:
        lines = Path("/proc/self/io").read_text().splitlines()
    except OSError:
        return 0
    return int(dict(line.split(": ") for line in lines)["wchar"])


def _audio_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT sum(length(data)) FROM audio_chunks")).scalar()
    return int(stored or 0)


def run(db_url: str, mix: str, messages: int) -> dict[str, float]:
    engine = make_engine(db_url)
    upgrade(engine)
    # The recorder process's garbage collector settings, set there once started: without them a
    # full collection ran over the queued backlog mid-run (55 ms of a 0.26 s quick run).
    settle_gc()
    interpret_started = time.process_time()
    submits = message_records(mix, messages)
    interpret_cpu = time.process_time() - interpret_started
    counter = _Counter()
    # The whole backlog queued at once: no bound of the queue's (messages or bytes) may shed it.
    writer = Writer(
        engine, queue_size=len(submits) + 10, queue_limit_bytes=sys.maxsize, observer=counter
    )
    for records in submits:
        writer.submit(records)
    started, cpu_started = time.perf_counter(), time.process_time()
    written_before = _written_bytes()
    writer.start()
    writer.close(timeout_s=600, drain_limit_s=600)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    written = _written_bytes() - written_before
    events = sum(isinstance(r, EventRecord) for records in submits for r in records)
    return {
        "events": events,
        "records": counter.records,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "cpu_us_per_event": cpu / events * 1e6,
        "cpu_s": cpu,  # the writer's: on a shared machine, steadier than the rate
        # `SessionRecorder.on_message` making the records (the recorder's loop, not the writer)
        "interpret_cpu_us_per_message": interpret_cpu / messages * 1e6,
        "audio_bytes_per_event": _audio_bytes(engine) / events,
        # SQLite: every byte of the WAL and of its checkpoints into the database file
        "written_bytes_per_event": written / events,
        "dropped": counter.dropped,
        "db_errors": counter.db_errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of an empty database")
    parser.add_argument("--mix", choices=("voice", "small"), default="voice")
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    json.dump(run(args.db, args.mix, args.messages), sys.stdout)
    print()


if __name__ == "__main__":
    main()
