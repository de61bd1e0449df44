"""Schema migrations, the writer thread and the shared queries on real SQLite files."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select, text

from handover.ids import uuid7
from storage import browse, prune
from storage.db import current_revision, head_revision, make_engine, upgrade
from storage.models import Base, Event, RealtimeSession, Response, UpgradeFailure, table
from storage.records import (
    EventRecord,
    ResponseCreated,
    ResponseDone,
    SessionClosed,
    SessionOpened,
    UpgradeFailed,
)
from storage.writer import Writer
from tests.support.writer_observer import WriterTally

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def opened(session_id: str = "s1", started_at: datetime = NOW) -> SessionOpened:
    return SessionOpened(session_id, started_at, "ga", "/v1/realtime", "full", model="gpt-realtime")


def event(seq: int, session_id: str = "s1", **kwargs: object) -> EventRecord:
    return EventRecord(session_id, seq, NOW, "server", "x", 10, **kwargs)  # type: ignore[arg-type]


def count(engine: Engine, model: type[Base]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table(model))).scalar_one())


def test_migrations_match_the_models(engine: Engine):
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_sqlite_runs_in_wal_mode(sqlite_db_url: str):
    engine = make_engine(sqlite_db_url)
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"


def test_sqlite_checkpoints_the_wal_every_4000_pages(sqlite_db_url: str):
    # Fewer checkpoints write each index page into the file fewer times (SQLite's default: 1,000).
    engine = make_engine(sqlite_db_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 4000


def test_writer_commits_every_record_on_close(engine: Engine):
    writer = Writer(engine, queue_size=10_000, flush_interval_s=0.05)
    writer.start()
    writer.submit([opened()])
    for seq in range(5000):
        writer.submit([event(seq)])
    writer.close()
    assert count(engine, Event) == 5000
    assert not writer.alive


def test_flush_waits_for_earlier_records(engine: Engine):
    writer = Writer(engine, flush_interval_s=10.0)
    writer.start()
    writer.submit([opened()])
    writer.submit([event(0)])
    assert writer.flush(timeout_s=5)
    assert count(engine, Event) == 1
    writer.close()


def test_full_queue_drops_and_counts(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, queue_size=3, observer=observer)  # not started: nothing drains
    accepted = [writer.submit([event(seq)]) for seq in range(5)]
    assert accepted == [True, True, True, False, False]
    assert observer.drops == {"queue_full": 2}


def test_one_bad_row_does_not_fail_its_batch(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, flush_interval_s=0.05, observer=observer)
    writer.start()
    writer.submit([opened()])
    writer.submit([event(0)])
    writer.submit([event(0, session_id="no-such-session")])  # fails its foreign key
    writer.submit([event(1)])
    writer.close()
    assert count(engine, Event) == 2
    assert observer.drops == {"db_error": 1}


def test_response_done_without_created_still_makes_a_row(engine: Engine):
    writer = Writer(engine)
    writer.start()
    writer.submit([opened()])
    writer.submit([ResponseCreated("s1", "resp_a", NOW, "in_progress")])
    usage: dict[str, int | None] = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    writer.submit([ResponseDone("s1", "resp_a", NOW, "completed", usage=usage)])
    writer.submit([ResponseDone("s1", "resp_b", NOW, "cancelled", "turn_detected", usage=usage)])
    writer.close()
    with engine.connect() as connection:
        rows = connection.execute(
            select(table(Response)).order_by(table(Response).c.response_id)
        ).all()
    assert [(r.response_id, r.status, r.total_tokens) for r in rows] == [
        ("resp_a", "completed", 15),
        ("resp_b", "cancelled", 15),
    ]
    assert rows[0].created_at is not None


def test_database_outage_holds_records_until_it_clears(tmp_path):
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    engine = make_engine(url)
    upgrade(engine)
    observer = WriterTally()
    blocker = make_engine(url).connect()
    blocker.execute(text("PRAGMA busy_timeout=0"))
    blocker.exec_driver_sql("BEGIN EXCLUSIVE")
    writer = Writer(make_engine(url), flush_interval_s=0.01, observer=observer)
    writer.start()
    writer.submit([opened()])
    writer.submit([event(0)])
    threading.Event().wait(6.5)  # longer than the 5 s busy timeout, so the writer must retry
    blocker.rollback()
    blocker.close()
    assert writer.flush(timeout_s=20)
    writer.close()
    assert count(engine, Event) == 1
    assert observer.db_errors >= 1
    assert observer.drops == {}


def test_list_sessions_newest_first_with_totals(engine: Engine):
    writer = Writer(engine)
    writer.start()
    writer.submit([opened("old", NOW - timedelta(days=3))])
    writer.submit([opened("new", NOW)])
    writer.submit([event(0, "new")])
    writer.submit([event(1, "new")])
    usage: dict[str, int | None] = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    writer.submit([ResponseDone("new", "r1", NOW, "completed", usage=usage)])
    writer.submit([SessionClosed("new", NOW, 1000, "", "client")])
    writer.close()
    with engine.connect() as connection:
        rows = browse.list_sessions(connection, limit=10)
    assert [r["id"] for r in rows] == ["new", "old"]
    assert (rows[0]["events"], rows[0]["responses"], rows[0]["total_tokens"]) == (2, 1, 10)
    assert (rows[0]["close_code"], rows[0]["closed_by"]) == (1000, "client")
    assert (rows[1]["events"], rows[1]["responses"]) == (0, 0)


def test_prune_deletes_old_sessions_with_their_rows(engine: Engine):
    writer = Writer(engine)
    writer.start()
    writer.submit([opened("old", NOW - timedelta(days=3))])
    writer.submit([event(0, "old")])
    writer.submit([opened("new", NOW)])
    writer.submit([event(0, "new")])
    writer.close()
    with engine.begin() as connection:
        assert prune.prune_sessions(connection, NOW - timedelta(days=1)) == 1
    assert count(engine, RealtimeSession) == 1
    assert count(engine, Event) == 1


def test_uuid7_sorts_by_time_and_is_version_7():
    first, second = uuid7(1_000), uuid7(2_000)
    assert first < second
    assert first[14] == "7"
    assert second[19] in "89ab"


def test_retention_prunes_old_sessions_and_failed_connection_attempts(engine: Engine):
    loader = Writer(engine)
    loader.start()
    for name, days in (("ancient", 40), ("recent", 1)):
        started = datetime.now(UTC) - timedelta(days=days)
        loader.submit([opened(name, started)])
        loader.submit([UpgradeFailed(started, 502, "/v1/realtime", name)])
    loader.close()
    writer = Writer(engine, retention_days=30)
    writer.start()
    assert writer.flush(timeout_s=10)
    writer.close()
    with engine.connect() as connection:
        assert [r["id"] for r in browse.list_sessions(connection)] == ["recent"]
        failures = connection.execute(select(table(UpgradeFailure).c.reason)).scalars()
        assert list(failures) == ["recent"]


def test_values_the_database_cannot_hold_are_kept_as_text(engine: Engine):
    observer = WriterTally()
    writer = Writer(engine, observer=observer)
    writer.start()
    writer.submit([opened()])
    writer.submit([event(0, payload={"type": "x", "text": "nul\x00here"})])
    writer.submit([event(1, payload={"type": "x", "n": 2**70})])
    writer.submit([event(2, payload={"type": "x"})])
    writer.close()
    with engine.connect() as connection:
        rows = list(connection.execute(select(table(Event)).order_by(table(Event).c.seq)))
    assert [r.seq for r in rows] == [0, 1, 2]
    assert rows[0].payload["text"] in ("nul\x00here", "nul\\u0000here")
    assert rows[1].payload["n"] in (2**70, str(2**70))
    assert observer.drops == {}


def test_two_processes_can_migrate_at_once(db_url: str):
    script = (
        "import sys; from storage.db import make_engine, upgrade; upgrade(make_engine(sys.argv[1]))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, db_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    assert current_revision(make_engine(db_url)) == head_revision()


def test_prune_works_in_batches_oldest_first(engine: Engine):
    writer = Writer(engine)
    writer.start()
    for day in range(5):
        writer.submit([opened(f"s{day}", NOW - timedelta(days=10 + day))])
    writer.submit([opened("keep", NOW)])
    writer.close()
    batches = []
    while True:
        with engine.begin() as connection:
            batches.append(prune.prune_sessions(connection, NOW - timedelta(days=1), limit=2))
        if batches[-1] < 2:
            break
    assert batches == [2, 2, 1]
    with engine.connect() as connection:
        assert [r["id"] for r in browse.list_sessions(connection)] == ["keep"]
