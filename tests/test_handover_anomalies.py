"""A message for a session the recorder does not know, and an open sent again, are counted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from handover import wire as handover
from handover.wire import Item
from protocol.pricing import BUILTIN_PRICES, PriceTable
from recorder.metrics import Metrics
from recorder.recording import Recording
from storage.writer import Writer


@pytest.fixture
def recording(sqlite_db_url: str) -> Iterator[Recording]:
    from storage.db import make_engine, upgrade

    engine: Engine = make_engine(sqlite_db_url)
    upgrade(engine)
    writer = Writer(engine, flush_interval_s=0.01)
    writer.start()
    yield Recording(writer, Metrics(CollectorRegistry()), PriceTable(BUILTIN_PRICES))
    writer.close()
    engine.dispose()


def anomalies(recording: Recording, kind: str) -> float:
    value = recording.metrics.registry.get_sample_value(
        "openai_realtime_recorder_handover_anomalies_total", {"kind": kind}
    )
    assert value is not None
    return value


def open_item(session: int) -> Item:
    fields = {
        "id": f"s{session}",
        "started_at": time.time(),
        "api": "ga",
        "path": "/v1/realtime",
        "record_mode": "full",
    }
    return Item(handover.OPEN, 0, session, 0, time.time(), orjson.dumps(fields))


def message_item(session: int) -> Item:
    body = b'{"type":"session.update"}'
    flags = handover.FROM_CLIENT | handover.IS_TEXT
    return Item(handover.MESSAGE, flags, session, 0, time.time(), body)


def test_both_kinds_start_at_zero(recording: Recording):
    assert anomalies(recording, "unknown_session") == 0
    assert anomalies(recording, "reopened_session") == 0


def test_a_message_for_an_unknown_session_is_counted(recording: Recording):
    recording.handle(1, message_item(7))
    recording.handle(1, message_item(7))
    assert anomalies(recording, "unknown_session") == 2


def test_a_message_for_a_known_session_is_not_an_anomaly(recording: Recording):
    recording.handle(1, open_item(7))
    recording.handle(1, message_item(7))
    assert anomalies(recording, "unknown_session") == 0


def test_a_session_opened_again_is_counted_and_kept_as_first_opened(recording: Recording):
    recording.handle(1, open_item(7))
    first = recording.sessions[(1, 7)]
    recording.handle(1, open_item(7))
    assert anomalies(recording, "reopened_session") == 1
    assert recording.sessions[(1, 7)] is first


def test_the_same_session_number_of_another_relay_is_no_reopen(recording: Recording):
    recording.handle(1, open_item(7))
    recording.handle(2, open_item(7))
    assert anomalies(recording, "reopened_session") == 0
