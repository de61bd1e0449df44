"""`run_demo` through a real `rtrec proxy`: every scenario is recorded as its client saw it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from simulator import FakeRealtimeServer
from simulator.demo import run_demo
from simulator.scenarios import BETA_MODEL, GA_MODEL, ScenarioResult
from storage.db import make_engine
from storage.models import AudioChunk, Event, RealtimeSession, Response, Transcription, table
from tests.support.proxy import proxy_runner

pytestmark = pytest.mark.asyncio(loop_scope="module")

JSON = dict[str, Any]
Rows = dict[str, list[Any]]


def all_rows(db_url: str, model: type) -> list[Any]:
    engine = make_engine(db_url)
    t = table(model)
    with engine.connect() as connection:
        rows = list(connection.execute(select(t).order_by(t.c.id)))
    engine.dispose()
    return rows


def rows_by_session(db_url: str, model: type) -> Rows:
    grouped: Rows = defaultdict(list)
    for row in all_rows(db_url, model):
        grouped[row.session_id].append(row)
    return grouped


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JSON]:
    """Every scenario once, concurrently, through one proxy; the proxy stopped (flushed) after."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'rtrec.db'}"
    # Paced just enough that a cancel or a barge-in crossing the proxy lands mid-answer.
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        with proxy_runner(tmp_path_factory.mktemp("proxy")) as run_proxy:
            proxy = run_proxy(server.base_url, db_url)
            results = await run_demo(proxy.base_url, concurrency=4)
            for handshake in server.handshakes:
                await server.wait_closed(handshake.conn_id)
            assert proxy.stop() == 0
    # The GPT-Live sessions pass the proxy too; what it records of them is another test's.
    realtime = [r for r in results if r.api != "live"]
    sessions = {
        s.openai_session_id: s for s in all_rows(db_url, RealtimeSession) if s.api != "live"
    }
    yield {
        "server": server,
        "results": realtime,
        "live_results": [r for r in results if r.api == "live"],
        "db_url": db_url,
        "session_ids": {r.name: sessions[r.openai_session_id].id for r in realtime},
        "sessions": sessions,
    }


def by_name(recorded: JSON) -> dict[str, ScenarioResult]:
    return {r.name: r for r in recorded["results"]}


async def test_the_demo_s_gpt_live_sessions_pass_the_proxy(recorded: JSON) -> None:
    live: list[ScenarioResult] = recorded["live_results"]
    server: FakeRealtimeServer = recorded["server"]
    assert [r.name for r in live] == ["live_voice", "live_delegation"]
    assert all(r.as_expected and r.audio_both_ways for r in live), [r.summary() for r in live]
    paths = [h.path for h in server.handshakes if "/live/" in h.path]
    assert paths == ["/v1/live/sessions"] * 2


async def test_the_demo_s_gpt_live_sessions_are_recorded_as_live(recorded: JSON) -> None:
    live: list[ScenarioResult] = recorded["live_results"]
    rows = [s for s in all_rows(recorded["db_url"], RealtimeSession) if s.api == "live"]
    assert sorted(s.openai_session_id or "" for s in rows) == sorted(
        r.openai_session_id or "" for r in live
    )
    assert all(s.usage_final and s.billable_seconds for s in rows), [
        (s.usage_final, s.billable_seconds) for s in rows
    ]


async def test_each_scenario_is_one_session_with_its_interface(recorded: JSON) -> None:
    sessions = recorded["sessions"]
    results: list[ScenarioResult] = recorded["results"]
    assert all(r.as_expected for r in results), [r.summary() for r in results]
    assert len(sessions) == len(results) == 7
    for result in results:
        session = sessions[result.openai_session_id]
        assert session.api == result.api
        assert session.closed_by == "client"
        assert session.key_fingerprint is not None
    named = by_name(recorded)
    assert sessions[named["beta"].openai_session_id].model == BETA_MODEL
    assert sessions[named["voice"].openai_session_id].model == GA_MODEL
    assert "intent=transcription" in sessions[named["transcription"].openai_session_id].path


async def test_responses_hold_each_status_and_the_usage_the_simulator_sent(recorded: JSON) -> None:
    server: FakeRealtimeServer = recorded["server"]
    sent = {
        e["response"]["id"]: e["response"]
        for e in server.events(direction="server")
        if e["type"] == "response.done"
    }
    responses = rows_by_session(recorded["db_url"], Response)
    for result in recorded["results"]:
        rows = responses[recorded["session_ids"][result.name]]
        assert [(r.response_id, r.status, r.status_reason) for r in rows] == [
            (o.response_id, o.status, o.reason) for o in result.responses
        ]
        for row in rows:
            usage = sent[row.response_id]["usage"]
            itd, otd = usage["input_token_details"], usage["output_token_details"]
            cached = itd["cached_tokens_details"]
            assert (row.input_tokens, row.output_tokens, row.total_tokens) == (
                usage["input_tokens"],
                usage["output_tokens"],
                usage["total_tokens"],
            )
            assert (row.input_text_tokens, row.input_audio_tokens, row.cached_tokens) == (
                itd["text_tokens"],
                itd["audio_tokens"],
                itd["cached_tokens"],
            )
            assert (row.cached_text_tokens, row.cached_audio_tokens) == (
                cached["text_tokens"],
                cached["audio_tokens"],
            )
            assert (row.output_text_tokens, row.output_audio_tokens) == (
                otd["text_tokens"],
                otd["audio_tokens"],
            )
    named = by_name(recorded)
    assert named["barge_in"].statuses[0] == ("cancelled", "turn_detected")
    assert named["text"].statuses[1] == ("cancelled", "client_cancelled")


async def test_transcriptions_are_recorded_per_session(recorded: JSON) -> None:
    transcriptions = rows_by_session(recorded["db_url"], Transcription)
    for result in recorded["results"]:
        rows = transcriptions[recorded["session_ids"][result.name]]
        assert len(rows) == result.transcriptions
    named = by_name(recorded)
    only = transcriptions[recorded["session_ids"]["transcription"]]
    assert [(r.model, r.usage_type) for r in only] == [("gpt-4o-transcribe", "tokens")] * 2
    assert all(r.transcript for r in only)
    (beta,) = transcriptions[recorded["session_ids"]["beta"]]
    assert (beta.model, beta.usage_type) == ("whisper-1", "duration")
    assert named["transcription"].responses == []


async def test_audio_is_recorded_in_both_directions_byte_for_byte(recorded: JSON) -> None:
    chunks = rows_by_session(recorded["db_url"], AudioChunk)
    for result in recorded["results"]:
        rows = chunks[recorded["session_ids"][result.name]]
        user = sum(len(r.data) for r in rows if r.direction == "client")
        assistant = sum(len(r.data) for r in rows if r.direction == "server")
        assert (user, assistant) == (result.user_audio_bytes, result.assistant_audio_bytes)
    named = by_name(recorded)
    assert named["voice"].audio_both_ways
    assert named["barge_in"].audio_both_ways
    beta = chunks[recorded["session_ids"]["beta"]]
    assert {(r.direction, r.audio_format, r.sample_rate) for r in beta} == {
        ("client", "g711_ulaw", 8000),
        ("server", "g711_ulaw", 8000),
    }


async def test_errors_are_recorded_with_their_codes(recorded: JSON) -> None:
    events = rows_by_session(recorded["db_url"], Event)
    for result in recorded["results"]:
        rows = [e for e in events[recorded["session_ids"][result.name]] if e.type == "error"]
        assert [r.error_code for r in rows] == result.error_codes
    errors = [e for e in events[recorded["session_ids"]["errors"]] if e.type == "error"]
    assert [(e.error_type, e.error_code) for e in errors] == [
        ("invalid_request_error", "invalid_value"),
        ("invalid_request_error", "unknown_parameter"),
    ]
    after = [e.type for e in events[recorded["session_ids"]["errors"]] if e.seq > errors[-1].seq]
    assert "response.done" in after  # the socket stayed open


async def test_the_tool_call_round_trip_is_recorded(recorded: JSON) -> None:
    events = rows_by_session(recorded["db_url"], Event)[recorded["session_ids"]["tool_call"]]
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    (output,) = [
        e
        for e in events
        if e.type == "conversation.item.create"
        and e.payload["item"]["type"] == "function_call_output"
    ]
    assert done.payload["name"] == "get_weather"
    assert output.payload["item"]["call_id"] == done.payload["call_id"]
    assert done.seq < output.seq
    answer = [e for e in events if e.type == "response.output_text.delta" and e.seq > output.seq]
    assert answer
