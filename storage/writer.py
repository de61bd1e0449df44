"""The writer thread: the only code that writes recorded traffic, in batches, off the loop."""

from __future__ import annotations

import binascii
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, Engine, Table, insert, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from storage import models
from storage.queries import prune_sessions
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
from storage.sanitize import storable

logger = logging.getLogger(__name__)

MAX_BATCH_RECORDS = 2000
DRAIN_PAUSE_S = 0.05  # the writer's nap between drains of the queue while it fills a batch
RETRY_BACKOFF_MAX_S = 2.0
GIVE_UP_ON_CLOSE_S = 10.0
PRUNE_EVERY_S = 3600.0
PRUNE_BATCH_SESSIONS = 100


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


@dataclass
class _Barrier:
    """Queued behind everything submitted before it; set once those records are committed."""

    done: threading.Event = field(default_factory=threading.Event)
    stop: bool = False


def _events_in(records: Iterable[Record]) -> int:
    """How many messages a drop loses: the metric counts events, whatever else they carried."""
    return sum(isinstance(record, EventRecord) for record in records)


def _row(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _audio_row(record: AudioRecord) -> dict[str, Any] | None:
    row = _row(record)
    try:
        row["data"] = binascii.a2b_base64(row.pop("audio_base64"), strict_mode=True)
    except (binascii.Error, ValueError):
        logger.warning(
            "audio of event %d in session %s is not valid base64", record.seq, record.session_id
        )
        return None
    return row


def _session_row(record: SessionOpened) -> dict[str, Any]:
    row = _row(record)
    del row["properties"]  # rows of their own, see _insert_properties
    return row


def _insert_properties(connection: Connection, records: Sequence[Record]) -> None:
    rows = [
        {"session_id": record.id, "name": name, "value": value}
        for record in records
        if isinstance(record, SessionOpened)
        for name, value in record.properties
    ]
    if rows:
        connection.execute(insert(models.table(models.SessionProperty)), rows)


_INSERTS: dict[type, tuple[Table, Callable[[Any], dict[str, Any] | None]]] = {
    SessionOpened: (models.table(models.RealtimeSession), _session_row),
    EventRecord: (models.table(models.Event), _row),
    ResponseCreated: (models.table(models.Response), _row),
    RateLimitRecord: (models.table(models.RateLimit), _row),
    TranscriptionRecord: (models.table(models.Transcription), _row),
    AudioRecord: (models.table(models.AudioChunk), _audio_row),
}


def apply_records(connection: Connection, records: Sequence[Record]) -> None:
    """Write `records` in one transaction: inserts first (sessions before what refers to them)."""
    inserts: dict[type, list[dict[str, Any]]] = {kind: [] for kind in _INSERTS}
    updates: list[Record] = []
    for record in records:
        target = _INSERTS.get(type(record))
        if target is None:
            updates.append(record)
            continue
        row = target[1](record)
        if row is not None:
            inserts[type(record)].append(row)
    for kind, rows in inserts.items():
        if not rows:
            continue
        if kind is EventRecord and connection.dialect.name == "sqlite":
            _insert_events_sqlite(connection, rows)
        else:
            connection.execute(insert(_INSERTS[kind][0]), rows)
        if kind is SessionOpened:
            _insert_properties(connection, records)
    for record in updates:
        _apply_update(connection, record)


_EVENT_COLUMNS = [c.name for c in models.table(models.Event).columns if c.name != "id"]
# Column names come from our own model, never from input.
_SQLITE_EVENT_INSERT = "INSERT INTO events ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(_EVENT_COLUMNS), ", ".join("?" for _ in _EVENT_COLUMNS)
)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers past 64 bits: the stdlib writes them
        return json.dumps(value, ensure_ascii=False)


def _sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime type stores (UTC, no offset)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond:06d}"


def _insert_events_sqlite(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """The hottest insert, straight to the driver: SQLAlchemy's per-row parameter handling
    costs more than SQLite's own work here (measured: about 2x the events per second)."""
    for row in rows:
        row["ts"] = _sqlite_datetime(row["ts"])
        row["payload"] = _json_text(row["payload"])
    connection.exec_driver_sql(
        _SQLITE_EVENT_INSERT, [tuple(row[c] for c in _EVENT_COLUMNS) for row in rows]
    )


def _apply_update(connection: Connection, record: Record) -> None:
    sessions = models.table(models.RealtimeSession)
    if isinstance(record, SessionChanged):
        values = {
            k: v
            for k, v in (("model", record.model), ("openai_session_id", record.openai_session_id))
            if v is not None
        }
        if values:
            connection.execute(update(sessions).where(sessions.c.id == record.id).values(values))
    elif isinstance(record, SessionClosed):
        values = _row(record)
        del values["id"]
        connection.execute(update(sessions).where(sessions.c.id == record.id).values(values))
    elif isinstance(record, ResponseDone):
        _apply_response_done(connection, record)


def _apply_response_done(connection: Connection, record: ResponseDone) -> None:
    responses = models.table(models.Response)
    values = _row(record)
    values.update(values.pop("usage"))
    del values["session_id"], values["response_id"]
    if values["created_at"] is None:
        del values["created_at"]
    result = connection.execute(
        update(responses)
        .where(responses.c.session_id == record.session_id)
        .where(responses.c.response_id == record.response_id)
        .values(values)
    )
    if result.rowcount == 0:  # its response.created was never seen (or dropped)
        values.update(session_id=record.session_id, response_id=record.response_id)
        connection.execute(insert(responses), [values])


class Writer:
    """A bounded queue drained by one thread that commits batches at least every flush interval."""

    def __init__(
        self,
        engine: Engine,
        *,
        queue_size: int = 100_000,
        flush_interval_s: float = 0.25,
        observer: WriterObserver | None = None,
        retention_days: int = 0,
    ) -> None:
        self._engine = engine
        # One item per relayed message (its records together), so a drop loses whole messages.
        self._queue: queue.Queue[Sequence[Record] | _Barrier] = queue.Queue(maxsize=queue_size)
        self._flush_interval_s = flush_interval_s
        self._observer: WriterObserver = observer or _NullObserver()
        self._thread = threading.Thread(target=self._run, name="rtrec-writer", daemon=True)
        self._closing = threading.Event()
        self.failing_since: float | None = None
        self._retention_days = retention_days
        self._next_prune = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def capacity(self) -> int:
        return self._queue.maxsize

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, records: Sequence[Record]) -> bool:
        """Queue one message's records without ever blocking; a full queue drops and counts them."""
        try:
            self._queue.put_nowait(records)
        except queue.Full:
            self._observer.dropped_records("queue_full", _events_in(records))
            return False
        return True

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Block until every record submitted so far is committed (or dropped)."""
        barrier = _Barrier()
        self._queue.put(barrier, timeout=timeout_s)
        return barrier.done.wait(timeout_s)

    def close(self, timeout_s: float = 60.0) -> None:
        """Commit everything queued, then stop the thread."""
        if not self._thread.is_alive():
            return
        self._closing.set()
        self._queue.put(_Barrier(stop=True), timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            if self._retention_days and time.monotonic() >= self._next_prune:
                self._prune()
            batch, barrier = self._collect()
            if batch:
                self._write(batch)
            if barrier is not None:
                barrier.done.set()
                if barrier.stop:
                    return

    def _prune(self) -> None:
        """Apply `retention_days`; runs here so that this thread stays the only writer."""
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        cutoff = datetime.now(UTC) - timedelta(days=self._retention_days)
        try:
            with self._engine.begin() as connection:
                deleted = prune_sessions(connection, cutoff, PRUNE_BATCH_SESSIONS)
        except SQLAlchemyError as exc:
            logger.error("retention pruning failed: %s", exc)
            self._observer.db_error()
            return
        if deleted:
            logger.info("retention: deleted %d session(s) started before %s", deleted, cutoff)
        if deleted == PRUNE_BATCH_SESSIONS:  # more to go: next turn, after a batch of records
            self._next_prune = time.monotonic()

    def _collect(self) -> tuple[list[Record], _Barrier | None]:
        wait_s = max(self._next_prune - time.monotonic(), 0.0) if self._retention_days else None
        try:
            first = self._queue.get(timeout=wait_s)
        except queue.Empty:
            return [], None
        if isinstance(first, _Barrier):
            return [], first
        batch: list[Record] = list(first)
        deadline = time.monotonic() + self._flush_interval_s
        # Drain in bursts and sleep in between rather than wait on the queue: a waiting writer is
        # woken by every submit, and each wake-up costs the proxy's event loop a GIL handoff.
        while len(batch) < MAX_BATCH_RECORDS:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(remaining, DRAIN_PAUSE_S))
                continue
            if isinstance(item, _Barrier):
                return batch, item
            batch.extend(item)
        return batch, None

    def _write(self, batch: list[Record]) -> None:
        backoff_s = 0.1
        give_up_at: float | None = None
        while True:
            started = time.perf_counter()
            try:
                with self._engine.begin() as connection:
                    apply_records(connection, batch)
            except OperationalError as exc:
                # The database is unreachable, locked or full: keep the batch and try again.
                self._observer.db_error()
                now = time.monotonic()
                if self.failing_since is None:
                    self.failing_since = now
                    logger.error("database unavailable, holding %d records: %s", len(batch), exc)
                if self._closing.is_set():
                    give_up_at = give_up_at or now + GIVE_UP_ON_CLOSE_S
                    if now >= give_up_at:
                        logger.error("giving up on %d records at shutdown", len(batch))
                        self._observer.dropped_records("db_unavailable", _events_in(batch))
                        return
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)
                continue
            except (SQLAlchemyError, ValueError, TypeError) as exc:
                logger.warning(
                    "batch of %d records failed (%s); writing them one by one", len(batch), exc
                )
                self._observer.db_error()
                self._write_one_by_one(batch)
                return
            if self.failing_since is not None:
                logger.warning("database available again")
                self.failing_since = None
            self._observer.batch_written(len(batch), time.perf_counter() - started)
            return

    def _write_one_by_one(self, batch: Iterable[Record]) -> None:
        for record in batch:
            if self._try_write(record) or self._try_write(storable(record)):
                continue
            logger.error("dropping one %s record the database refuses", type(record).__name__)
            self._observer.dropped_records("db_error", _events_in([record]))

    def _try_write(self, record: Record) -> bool:
        try:
            with self._engine.begin() as connection:
                apply_records(connection, [record])
        except Exception as exc:  # whatever one record does, the writer thread must live on
            logger.warning("%s record refused: %s", type(record).__name__, exc)
            self._observer.db_error()
            return False
        return True
