"""SQLite's WAL moved into the database file by a thread beside the writer (checkpointer.py)."""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import select

from storage import detail
from storage.checkpointer import CHECKPOINT_EVERY_BYTES, CHECKPOINT_NICE, catch_up
from storage.db import make_engine, upgrade
from storage.records import AudioRecord, EventRecord
from storage.writer import Writer
from tests.test_storage_writer import NOW, opened


def audio_message(seq: int, chunk: bytes) -> list[EventRecord | AudioRecord]:
    audio = base64.b64encode(chunk).decode()
    return [
        EventRecord("s1", seq, NOW, "server", "response.output_audio.delta", len(audio)),
        AudioRecord("s1", seq, NOW, "server", "pcm16", 24000, audio, "resp_1"),
    ]


def test_the_wal_reaches_the_database_file_while_the_writer_runs(tmp_path: Path):
    """The writer's commits only append to the WAL: the file grows before any shutdown
    checkpoint (with SQLite's autocheckpoint alone, only past 4,000 pages, 64 MiB)."""
    database = tmp_path / "rtrec.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    writer = Writer(engine, flush_interval_s=0.05)
    writer.start()
    writer.submit([opened("s1")])
    chunk = bytes(range(256)) * 192  # 48 KiB of audio, 64 KiB of base64
    messages = 3 * CHECKPOINT_EVERY_BYTES // (len(chunk) * 4 // 3)
    for seq in range(messages):
        writer.submit(audio_message(seq, chunk))
    assert writer.flush(timeout_s=60)
    deadline = time.monotonic() + 30
    while database.stat().st_size < CHECKPOINT_EVERY_BYTES and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.stat().st_size >= CHECKPOINT_EVERY_BYTES
    writer.close()
    assert not [t for t in threading.enumerate() if t.name == "rtrec-checkpoint"]
    with engine.connect() as connection:
        stored = detail.audio_chunks(connection, "s1", "server")
    assert len(stored) == messages
    assert {bytes(stored_["data"]) for stored_ in stored} == {chunk}
    engine.dispose()


def test_a_reader_holding_an_old_snapshot_ends_a_catch_up_without_spinning(tmp_path: Path):
    database = tmp_path / "rtrec.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x BLOB)")
    checkpointer = engine.raw_connection()
    assert catch_up(checkpointer) == (1, True)
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)  # its snapshot: now
    with engine.begin() as connection:
        for _ in range(50):
            connection.exec_driver_sql("INSERT INTO t VALUES (zeroblob(20000))")
    runs, all_moved = catch_up(checkpointer)
    assert not all_moved  # what the reader may still read stays in the WAL
    assert runs <= 2
    reader.execute("COMMIT")
    assert catch_up(checkpointer) == (1, True)
    reader.close()
    checkpointer.close()
    with engine.connect() as connection:
        assert connection.execute(select(1)).scalar_one() == 1
    engine.dispose()


def test_the_checkpoint_thread_yields_the_cpu_to_the_relays(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'rtrec.db'}")
    upgrade(engine)
    writer = Writer(engine)
    writer.start()
    own = os.getpriority(os.PRIO_PROCESS, 0)
    (thread,) = [t for t in threading.enumerate() if t.name == "rtrec-checkpoint"]
    assert thread.native_id is not None
    deadline = time.monotonic() + 10
    while os.getpriority(os.PRIO_PROCESS, thread.native_id) == own and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == min(own + CHECKPOINT_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the writer's own
    writer.close()
    engine.dispose()
