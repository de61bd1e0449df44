"""One cost per session (responses + transcriptions, storage/cost.py): the same figure in
`rtrec sessions --json`, the dashboard's loaders and `rtrec diff`, and unpriced usage flagged."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from simulator import scenarios
from simulator.server import FakeRealtimeServer
from storage.browse import SessionFilter
from storage.cost import session_costs
from storage.db import make_engine
from storage.models import Response, Transcription, table
from storage.records import ResponseDone, SessionOpened, TranscriptionRecord
from storage.writer import Writer
from tests.support.proxy import ProxyProcess
from tests.support.replays import record_scenario, rtrec

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def stored_sum(db_url: str, model: Any, session_id: str) -> float:
    engine = make_engine(db_url)
    rows = table(model)
    with engine.connect() as connection:
        query = select(func.sum(rows.c.cost_usd)).where(rows.c.session_id == session_id)
        found = float(connection.scalar(query) or 0.0)
    engine.dispose()
    return found


async def test_a_voice_sessions_cost_is_one_figure_everywhere(
    run_proxy: Callable[..., ProxyProcess],
    fake_server: FakeRealtimeServer,
    sqlite_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
):
    session_id = await record_scenario(
        run_proxy, fake_server.base_url, sqlite_db_url, scenarios.voice_turn
    )
    transcription = stored_sum(sqlite_db_url, Transcription, session_id)
    expected = stored_sum(sqlite_db_url, Response, session_id) + transcription
    assert transcription > 0  # the demo's voice turn is transcribed: that cost must count

    _, out, _ = await rtrec("sessions", "--json", "--db", sqlite_db_url)
    (listed,) = json.loads(out)
    _, out, _ = await rtrec("diff", session_id, session_id, "--json", "--db", sqlite_db_url)
    compared = json.loads(out)["metrics"]["cost"]

    monkeypatch.setenv("RTREC_DB", sqlite_db_url)
    from dashboard import data

    data.clear_caches()
    shown = data.session(session_id)
    assert shown is not None
    page = data.session_page(SessionFilter(), 1, 10)

    assert listed["cost_usd"] == pytest.approx(expected, rel=1e-9)
    assert shown["cost_usd"] == pytest.approx(expected, rel=1e-9)
    assert page["cost_usd"].tolist() == pytest.approx([expected], rel=1e-9)
    assert compared == pytest.approx([expected, expected], rel=1e-9)


def test_unpriced_usage_is_counted_apart_from_the_cost(engine: Engine):
    writer = Writer(engine)
    writer.start()
    writer.submit([SessionOpened("s", NOW, "ga", "/v1/realtime?model=m", "full", model="m")])
    tokens: dict[str, int | None] = {"input_tokens": 8, "output_tokens": 2, "total_tokens": 10}
    writer.submit([ResponseDone("s", "r1", NOW, "completed", usage=tokens, cost_usd=0.25)])
    writer.submit([ResponseDone("s", "r2", NOW, "completed", usage=tokens, cost_usd=None)])
    writer.submit([ResponseDone("s", "r3", NOW, "failed", usage={}, cost_usd=None)])
    asr = TranscriptionRecord("s", NOW, "i1", "whisper-1", "hi", "duration", seconds=2.0, seq=5)
    writer.submit([asr])
    writer.close()
    with engine.connect() as connection:
        costs = session_costs(connection, ["s", "missing"])
    # r2 has tokens without a price, the transcription seconds without one; r3 had no usage.
    assert costs == {
        "s": {"cost_usd": 0.25, "unpriced": 2},
        "missing": {"cost_usd": None, "unpriced": 0},
    }
