"""The events (session_id, type) index: streamed events left out, reads by type still using it."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.dialects import sqlite

import protocol
from storage import detail
from storage.apply import apply_records
from storage.browse import EVENTS
from storage.db import alembic_config, make_engine, upgrade
from storage.event_index import INDEXED_CONDITION, UNINDEXED_TYPES, of_types
from storage.records import EventRecord, SessionOpened

INDEX = "ix_events_session_id_type"
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
AUDIO_DELTA = sorted(protocol.AUDIO_DELTAS)[0]


def index_condition(engine: Engine) -> str | None:
    """The WHERE of the index as the database keeps it, None for a full index."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :name"), {"name": INDEX}
            ).scalar_one()
        else:
            sql = connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"), {"name": INDEX}
            ).scalar_one()
    _, where, condition = str(sql).partition(" WHERE ")
    return condition if where else None


def test_the_index_leaves_the_streamed_events_out_after_the_upgrade(db_url: str):
    engine = make_engine(db_url)
    upgrade(engine, "0012")
    assert index_condition(engine) is None
    upgrade(engine)
    condition = index_condition(engine)
    assert condition is not None
    for name in UNINDEXED_TYPES:
        assert f"'{name}'" in condition
    assert protocol.ERROR not in condition
    engine.dispose()


def test_the_downgrade_makes_the_index_whole_again(db_url: str):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")
    assert index_condition(engine) is None
    assert INDEX in {index["name"] for index in inspect(engine).get_indexes("events")}
    engine.dispose()


def test_sqlite_keeps_the_condition_the_queries_name(sqlite_db_url: str):
    # SQLite uses a partial index only when the query names its condition word for word.
    engine = make_engine(sqlite_db_url)
    upgrade(engine)
    assert index_condition(engine) == INDEXED_CONDITION
    engine.dispose()


def test_a_read_by_type_uses_the_index_on_sqlite(sqlite_db_url: str):
    engine = make_engine(sqlite_db_url)
    upgrade(engine)
    query = select(EVENTS.c.seq).where(
        EVENTS.c.session_id == "s1", of_types(EVENTS.c.type, [protocol.ERROR])
    )
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        plan = " ".join(row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert f"USING INDEX {INDEX} (session_id=? AND type=?)" in plan
    engine.dispose()


def test_streamed_events_are_still_found_by_type(engine: Engine):
    opened = SessionOpened(
        id="s1", started_at=NOW, api="ga", path="/v1/realtime", record_mode="full"
    )
    types = [protocol.ERROR, AUDIO_DELTA, protocol.AUDIO_APPEND, protocol.RESPONSE_DONE]
    records = [
        EventRecord(
            session_id="s1",
            seq=seq,
            ts=NOW,
            direction="server",
            type=kind,
            size_bytes=10,
            payload={"type": kind},
        )
        for seq, kind in enumerate(types)
    ]
    with engine.begin() as connection:
        apply_records(connection, [opened, *records])
    with engine.connect() as connection:
        for chosen in ([AUDIO_DELTA], [protocol.ERROR], [AUDIO_DELTA, protocol.RESPONSE_DONE]):
            page = detail.events_page(connection, "s1", (), chosen, 10, 0)
            assert sorted(row["type"] for row in page) == sorted(chosen)
