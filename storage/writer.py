"""The writer thread: the only code that writes recorded traffic, in batches, off the loop."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from storage.apply import apply_records, with_natural_keys
from storage.checkpointer import Checkpointer
from storage.db import SQLITE_BUSY_TIMEOUT_MS, error_reason
from storage.prune import prune_calls, prune_sessions, prune_upgrade_failures
from storage.records import (
    AudioRecord,
    CallChanged,
    CallEventRecord,
    CallSeen,
    EventRecord,
    Record,
    SessionChanged,
    SessionClosed,
    SessionOpened,
)
from storage.replayed import stored_seqs, without_stored_audio
from storage.sanitize import storable
from storage.writer_queue import Barrier, Batch, Marker, Replayed, message_bytes

logger = logging.getLogger(__name__)

# Batches are this large only under a backlog (the flush interval ends them otherwise), and
# larger ones mean fewer commits: each commit writes again, whole, every index page it touched,
# and sessions interleave. Voice batches end at MAX_BATCH_BYTES first (~2,700 records); small
# frames reach this bound. At 2,000 records the writer benchmark's 50,000 voice events took 44
# commits; at 6,000 records / 12 MiB, 15 (7,950 -> 6,350 bytes written per event, 2026-12-07).
MAX_BATCH_RECORDS = 6000
# Bounds in bytes of the messages' events (`EventRecord.size_bytes`, as relayed), which is what
# fills memory: the records of a message take about its size again. Everything queued here is
# kept by its relay too until committed, each relay at most 8 MiB in memory
# (`handover.resend.RESEND_LIMIT_BYTES`; the rest waits on the relay's disk): at half of that, a
# relay sends the next batch while this one commits. 4 MiB against 12 MiB (2026-12-07, shared
# machine, alternated): voice blast 12.8k against 10.9k msg/s recorded; the writer benchmark
# 52.7-59.8k against 51.0-53.1k voice events/s (14-15 against 17 µs: a 12 MiB batch outgrows the
# CPU caches and SQLite's page cache), for 6,130 against 5,600 bytes written per event.
MAX_BATCH_BYTES = 4 * 1024 * 1024
# Room for eight relays' 8 MiB (`--workers`), so that the recorder never drops what a relay
# keeps. At 8 MiB, before relays kept their share, a client sending ten minutes of audio at once
# (39 MB in 0.5 s) lost ~1,000 appends here.
QUEUE_LIMIT_BYTES = 64 * 1024 * 1024
DRAIN_PAUSE_S = 0.05  # the writer's nap between drains of the queue while it fills a batch
RETRY_BACKOFF_MAX_S = 2.0
# Shutdown bounds: compose gives the proxy 30 s (`stop_grace_period`), docker 10 s by default.
GIVE_UP_ON_CLOSE_S = 5.0  # how long shutdown waits for an unavailable database
DRAIN_LIMIT_S = 8.0  # how long shutdown keeps writing a backlog to a working database
CLOSE_JOIN_MARGIN_S = 2.0
FAILING_BUSY_TIMEOUT_MS = 1000  # SQLite: shorter lock waits while retrying, to notice closing
PRUNE_EVERY_S = 3600.0
PRUNE_BATCH_SESSIONS = 100
# Beyond `queue_size`, room kept for session open/change/close alone: dropping one of them would
# orphan every later event of its session (foreign-key failures), so only messages are shed.
RESERVED_FOR_SESSIONS = 10_000
DROP_LOG_EVERY_S = 10.0
# Calls' rows are as few as sessions' and as needed: they share the reserved room.
_SESSION_RECORDS = (
    SessionOpened,
    SessionChanged,
    SessionClosed,
    CallSeen,
    CallChanged,
    CallEventRecord,
)


class WriterObserver(Protocol):
    """What the writer reports; the proxy turns these into metrics."""

    def batch_written(self, records: int, seconds: float) -> None: ...
    def dropped_records(self, reason: str, count: int) -> None: ...
    def db_error(self) -> None: ...


class _NullObserver:
    def batch_written(self, records: int, seconds: float) -> None:
        pass

    def dropped_records(self, reason: str, count: int) -> None:
        pass

    def db_error(self) -> None:
        pass


class _DropLog:
    """Logs full-queue drops at most once per `DROP_LOG_EVERY_S`, with the count since the last."""

    def __init__(self) -> None:
        self.messages = 0
        self.events = 0
        self._next_at = 0.0

    def add(self, events: int) -> None:
        self.messages += 1
        self.events += events
        if time.monotonic() >= self._next_at:
            self.report()

    def report(self) -> None:
        if self.messages:
            logger.warning(
                "recorder queue full: dropped %d message(s) (%d event(s)) since the last report",
                self.messages,
                self.events,
            )
        self.messages = self.events = 0
        self._next_at = time.monotonic() + DROP_LOG_EVERY_S


def _events_in(records: Iterable[Record]) -> int:
    """How many messages a drop loses: the metric counts events, whatever else they carried."""
    return sum(isinstance(record, EventRecord) for record in records)


def _sqlite_file(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


class Writer:
    """A bounded queue drained by one thread that commits batches at least every flush interval."""

    def __init__(
        self,
        engine: Engine,
        *,
        queue_size: int = 100_000,
        queue_limit_bytes: int = QUEUE_LIMIT_BYTES,
        flush_interval_s: float = 0.25,
        observer: WriterObserver | None = None,
        retention_days: int = 0,
    ) -> None:
        self._engine = engine
        # One item per relayed message (its records together), so a drop loses whole messages.
        # Unbounded underneath: `submit` enforces the bound, so that session records and the
        # barriers of flush/close always find room and `put` never raises `queue.Full`. A
        # SimpleQueue (C, one lock) puts a message in ~0.1 us where a Queue took ~1.5.
        self._queue: queue.SimpleQueue[Sequence[Record] | Barrier | Marker] = queue.SimpleQueue()
        self._queue_size = queue_size
        self._queue_limit_bytes = queue_limit_bytes
        # Two counters, each written by one thread only (the loop's submits, the writer's
        # takes), so that no lock is needed: their difference is what the queue holds.
        self._bytes_queued = 0
        self._bytes_taken = 0
        # Commit markers in the queue: not messages, so they take none of its places.
        self._markers = 0
        self._markers_lock = threading.Lock()
        self._drop_log = _DropLog()
        self._flush_interval_s = flush_interval_s
        self._observer: WriterObserver = observer or _NullObserver()
        self._thread = threading.Thread(target=self._run, name="rtrec-writer", daemon=True)
        self._closing = threading.Event()
        self._refused_any = False  # records submitted after close began
        self._give_up_at = (float("inf"), float("inf"))  # (database unavailable, any), set by close
        self._given_up: dict[str, int] = {}  # record kind -> count, given up at shutdown
        self.failing_since: float | None = None
        self._retention_days = retention_days
        self._next_prune = time.monotonic()
        # SQLite files: the WAL moved into the file beside this thread (storage/checkpointer.py).
        self._checkpointer = Checkpointer(engine) if _sqlite_file(engine) else None

    def start(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.start()
        self._thread.start()

    @property
    def depth(self) -> int:
        return max(self._queue.qsize() - self._markers, 0)

    @property
    def depth_bytes(self) -> int:
        """Bytes of the queued messages' events."""
        return self._bytes_queued - self._bytes_taken

    @property
    def capacity(self) -> int:
        """Messages the queue takes before it drops (`--queue-size`)."""
        return self._queue_size

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, records: Sequence[Record], replayed: bool = False) -> bool:
        """Queue one message's records without ever blocking; a full queue (`queue_size` messages
        or `queue_limit_bytes` reached) drops and counts them, keeping the session records among
        them (open, change, close) in the room reserved. Once `close` has begun, nothing will
        drain the queue: records are refused and counted. `replayed`: a relay sent the message
        again; its records may be stored already."""
        if self._closing.is_set():
            self._refuse(records)
            return False
        depth = self._queue.qsize() - self._markers
        # Room while the bytes queued are under the bound: it is exceeded by one message at most,
        # and a message larger than the bound (a 15 MiB append) is not refused for its size.
        if depth < self._queue_size and (
            self._bytes_queued - self._bytes_taken < self._queue_limit_bytes
        ):
            self._bytes_queued += message_bytes(records)
            self._queue.put_nowait(Replayed(records) if replayed else records)
            return True
        kept = [record for record in records if isinstance(record, _SESSION_RECORDS)]
        if kept and depth < self._queue_size + RESERVED_FOR_SESSIONS:
            self._queue.put_nowait(kept)
        elif kept:
            logger.error("recorder queue full: dropped %d session record(s)", len(kept))
        if len(kept) < len(records):
            events = _events_in(records)
            self._observer.dropped_records("queue_full", events)
            self._drop_log.add(events)
            return False
        return bool(kept) and depth < self._queue_size + RESERVED_FOR_SESSIONS

    def _refuse(self, records: Sequence[Record]) -> None:
        if not self._refused_any:
            logger.warning(
                "recorder shutting down: records arriving now are dropped and counted (no_writer)"
            )
            self._refused_any = True
        events = _events_in(records)
        if events:
            self._observer.dropped_records("no_writer", events)

    def mark(self, committed: Callable[[], None], soon: bool = False) -> None:
        """Call `committed` (from the writer thread) once everything submitted so far is;
        `soon`: without waiting for more records once the queue is empty."""
        with self._markers_lock:  # called from the loop and the call records' thread
            self._markers += 1
        self._queue.put_nowait(Marker(committed, soon))

    def count_unless_stored(self, session_id: str, seqs: Sequence[int], reason: str) -> None:
        """Count as dropped (`reason`) those of a session's messages `seqs` whose event is not
        stored once what was submitted before is committed: messages a recorder that died may
        have committed, which cannot be sent again (permessage-deflate after a gap)."""
        self.mark(partial(self._count_unless_stored, session_id, list(seqs), reason))

    def _count_unless_stored(self, session_id: str, seqs: list[int], reason: str) -> None:
        try:
            with self._engine.connect() as connection:
                missing = len(seqs) - len(stored_seqs(connection, session_id, seqs))
        except SQLAlchemyError as exc:
            logger.error(
                "could not check stored events: %s; counted all as dropped", error_reason(exc)
            )
            missing = len(seqs)
        if missing:
            self._observer.dropped_records(reason, missing)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Block until every record submitted so far is committed (or dropped)."""
        barrier = Barrier()
        self._queue.put_nowait(barrier)
        return barrier.done.wait(timeout_s)

    def close(
        self, timeout_s: float = GIVE_UP_ON_CLOSE_S, drain_limit_s: float = DRAIN_LIMIT_S
    ) -> None:
        """Commit everything queued, then stop the thread.

        Bounded, so that shutdown ends within compose's stop grace period: with the database
        unavailable the writer gives up `timeout_s` after this call, and even a working database
        gets `drain_limit_s`; whatever is left then is logged and counted as `db_unavailable`.
        """
        self._drop_log.report()
        if not self._thread.is_alive():
            return
        now = time.monotonic()
        self._give_up_at = (now + timeout_s, now + max(drain_limit_s, timeout_s))
        self._closing.set()
        self._queue.put_nowait(Barrier(stop=True))
        self._thread.join(max(drain_limit_s, timeout_s) + CLOSE_JOIN_MARGIN_S)

    def _run(self) -> None:
        while True:
            if self._retention_days and time.monotonic() >= self._next_prune:
                self._prune()
            batch = self._collect()
            if batch.markers:  # out of the queue (a moment late: depth may read a little low)
                with self._markers_lock:
                    self._markers -= len(batch.markers)
            if batch.records:
                self._write(batch.records, batch.replayed_audio)
                if self._checkpointer is not None:
                    self._checkpointer.committed(batch.size_bytes)
            for marker in batch.markers:
                self._run_marker(marker)
            barrier = batch.barrier
            if barrier is not None:
                barrier.done.set()
                if barrier.stop:
                    self._report_given_up()
                    if self._checkpointer is not None:
                        self._checkpointer.close()
                    self._checkpoint()
                    return

    @staticmethod
    def _run_marker(marker: Marker) -> None:
        try:
            marker.committed()
        except Exception:  # whatever a marker does, the writer thread must live on
            logger.exception("acknowledging a commit failed")

    def _checkpoint(self) -> None:
        """SQLite: move the WAL into the database file, so that a copy of the file alone, made
        after a clean exit, holds every recording (the -wal file is left empty)."""
        if self._engine.dialect.name != "sqlite" or self.failing_since is not None:
            return
        try:
            with self._engine.connect() as connection:
                busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        except SQLAlchemyError as exc:
            logger.warning("could not checkpoint the database at shutdown: %s", error_reason(exc))
            return
        if busy:  # a reader (the dashboard) was in the middle of a read: it keeps the WAL alive
            logger.info("database checkpoint at shutdown incomplete: a reader holds the WAL")

    def _prune(self) -> None:
        """Apply `retention_days`; runs here so that this thread stays the only writer."""
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        cutoff = datetime.now(UTC) - timedelta(days=self._retention_days)
        try:
            with self._engine.begin() as connection:
                deleted = prune_sessions(connection, cutoff, PRUNE_BATCH_SESSIONS)
                calls = prune_calls(connection, cutoff, PRUNE_BATCH_SESSIONS)
                failures = prune_upgrade_failures(connection, cutoff, PRUNE_BATCH_SESSIONS)
        except SQLAlchemyError as exc:
            logger.error("retention pruning failed: %s", error_reason(exc))
            self._observer.db_error()
            return
        if deleted or calls or failures:
            logger.info(
                "retention: deleted %d session(s), %d call(s) and %d failed connection attempt(s)"
                " before %s",
                deleted,
                calls,
                failures,
                cutoff,
            )
        # More to go: the next turn, after the records waiting now.
        if PRUNE_BATCH_SESSIONS in (deleted, calls, failures):
            self._next_prune = time.monotonic()

    def _collect(self) -> Batch:
        batch = Batch()
        wait_s = max(self._next_prune - time.monotonic(), 0.0) if self._retention_days else None
        try:
            first = self._queue.get(timeout=wait_s)
        except queue.Empty:
            return batch
        if not batch.take(first):  # a barrier: no message, no bytes
            return batch
        deadline = time.monotonic() + self._flush_interval_s
        # Drain in bursts and sleep in between rather than wait on the queue: a waiting writer is
        # woken by every submit, and each wake-up costs the proxy's event loop a GIL handoff.
        while len(batch.records) < MAX_BATCH_RECORDS and batch.size_bytes < MAX_BATCH_BYTES:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                # A relay that waits for an acknowledgement sends nothing until it comes: more
                # records would not come before the deadline (0.25 s lost per batch).
                if remaining <= 0 or batch.soon:
                    break
                time.sleep(min(remaining, DRAIN_PAUSE_S))
                continue
            if not batch.take(item):
                break
        self._bytes_taken += batch.size_bytes
        return batch

    def _write(self, batch: list[Record], replayed_audio: Sequence[AudioRecord] = ()) -> None:
        backoff_s = 0.1
        while True:
            if self._must_give_up():
                self._give_up(batch)
                return
            started = time.perf_counter()
            try:
                with self._engine.begin() as connection:
                    self._limit_lock_wait(connection)
                    records: Sequence[Record] = batch
                    if replayed_audio:
                        records = without_stored_audio(connection, batch, replayed_audio)
                    apply_records(connection, records)
            except OperationalError as exc:
                # The database is unreachable, locked or full: keep the batch and try again.
                self._observer.db_error()
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    logger.error(
                        "database unavailable, holding %d records: %s",
                        len(batch),
                        error_reason(exc),
                    )
                pause_s = backoff_s
                if self._closing.is_set():
                    pause_s = min(pause_s, max(self._give_up_at[0] - time.monotonic(), 0.0))
                time.sleep(pause_s)
                backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)
                continue
            except (SQLAlchemyError, ValueError, TypeError) as exc:
                logger.warning(
                    "batch of %d records failed (%s); writing them one by one",
                    len(batch),
                    error_reason(exc),
                )
                self._observer.db_error()
                self._write_one_by_one(batch)
                return
            if self.failing_since is not None:
                logger.warning("database available again")
                self.failing_since = None
            self._observer.batch_written(len(batch), time.perf_counter() - started)
            return

    def _must_give_up(self) -> bool:
        if not self._closing.is_set():
            return False
        now = time.monotonic()
        unavailable_at, any_at = self._give_up_at
        return now >= any_at or (self.failing_since is not None and now >= unavailable_at)

    def _limit_lock_wait(self, connection: Connection) -> None:
        """SQLite waits up to its busy timeout for a lock: shorter while failing or closing.
        Set on every write, so that a pooled connection never keeps a shortened wait."""
        if connection.dialect.name != "sqlite":
            return
        wait_ms = SQLITE_BUSY_TIMEOUT_MS
        if self.failing_since is not None:
            wait_ms = FAILING_BUSY_TIMEOUT_MS
        if self._closing.is_set():
            remaining_ms = int((self._give_up_at[0] - time.monotonic()) * 1000)
            wait_ms = max(min(wait_ms, remaining_ms), 0)
        connection.exec_driver_sql(f"PRAGMA busy_timeout={wait_ms}")

    def _give_up(self, batch: Sequence[Record]) -> None:
        """Shutdown ran out of time for these records: count them now, log them at the end."""
        self._observer.dropped_records("db_unavailable", _events_in(batch))
        for record in batch:
            kind = type(record).__name__
            self._given_up[kind] = self._given_up.get(kind, 0) + 1

    def _report_given_up(self) -> None:
        if self._given_up:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self._given_up.items()))
            logger.error(
                "shutdown: gave up on %d record(s) the database did not take in time: %s",
                sum(self._given_up.values()),
                kinds,
            )
        self._given_up = {}

    def _write_one_by_one(self, batch: Sequence[Record]) -> None:
        for record in with_natural_keys(batch):
            if self._try_write(record) or self._try_write(storable(record)):
                continue
            logger.error("dropping one %s record the database refuses", type(record).__name__)
            self._observer.dropped_records("db_error", _events_in([record]))

    def _try_write(self, record: Record) -> bool:
        try:
            with self._engine.begin() as connection:
                apply_records(connection, [record])
        except Exception as exc:  # whatever one record does, the writer thread must live on
            logger.warning("%s record refused: %s", type(record).__name__, error_reason(exc))
            self._observer.db_error()
            return False
        return True
