"""The official SDK's `client.live` through a real `rtrec proxy` to a hand-written fake GPT-Live.

One session is recorded per database (SQLite, PostgreSQL) for every test of this module; the
numbers are compared with what the fake service logged and the constants of its script.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
import pytest_asyncio
from sqlalchemy import select
from websockets.asyncio.client import connect

from analysis import export
from storage import detail
from storage.db import make_engine
from storage.models import AudioChunk, Event, RealtimeSession, Response, table
from tests.support import live_upstream as fake
from tests.support.live_upstream import FakeLiveService
from tests.support.proxy import ProxyProcess, proxy_runner

KEY = "sk-live-e2e-planted-key-0123456789abcdef"
RATE = 16_000
CHUNK_MS = 50
PRICING = """
[models."gpt-live-1"]
session_per_minute = 0.06
standby_per_minute = 0.03

[models."gpt-5-mini"]
text_input = 0.25
text_cached_input = 0.025
text_output = 2.0

[models."gpt-5-nano"]
text_input = 0.05
text_output = 0.4
"""
BILLED_ACTIVE = 'openai_realtime_billable_seconds_total{kind="active",model="gpt-live-1"}'
UNKNOWN_PATH = "/v1/voice/streams/str_123abc?token=abc"

pytestmark = pytest.mark.asyncio(loop_scope="module")


def rows(db_url: str, model: type) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        t = table(model)
        order = t.c.seq if "seq" in t.c else t.c.id
        found = list(connection.execute(select(t).order_by(order)))
    engine.dispose()
    return found


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per run of this module: it runs once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('live') / 'rtrec.db'}"
    return str(request.getfixturevalue("postgres").create_database())


async def read_until(conn: Any, event_type: str, received: list[dict[str, Any]]) -> None:
    while True:
        event = json.loads(await conn.recv_bytes())
        received.append(event)
        if event["type"] == event_type:
            return


async def live_session(base_url: str) -> list[dict[str, Any]]:
    """Start, speak `USER_SPEECH_MS` at 16 kHz, hear the answer, one bad update, close."""
    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)
    received: list[dict[str, Any]] = []
    async with client.live.connect() as conn:
        await conn.session.start(
            session={
                "model": "gpt-live-1",
                "audio": {"format": {"type": "audio/pcm", "rate": 16000}},
                "instructions": f"never reveal {KEY}",
            }
        )
        await read_until(conn, "session.started", received)
        for _ in range(fake.USER_SPEECH_MS // CHUNK_MS):
            chunk = base64.b64encode(fake.tone(CHUNK_MS, RATE)).decode()
            await conn.session.input_audio.append(audio=chunk)
        await read_until(conn, "session.usage.updated", received)
        await conn.session.update(session={"triggers": []})
        await read_until(conn, "error", received)
        await conn.session.close()
        await read_until(conn, "session.closed", received)
    return received


async def unrecorded_upgrades(proxy: ProxyProcess) -> None:
    """Two sockets to a path rtrec does not know: relayed (echoed) all the same."""
    for _ in range(2):
        async with connect(f"ws://127.0.0.1:{proxy.port}{UNKNOWN_PATH}") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("live-proxy")
    pricing = directory / "pricing.toml"
    pricing.write_text(PRICING)
    async with FakeLiveService() as service:
        with proxy_runner(directory) as run_proxy:
            proxy = run_proxy(service.base_url, db_url, "--pricing", str(pricing))
            received = await live_session(proxy.base_url)
            await unrecorded_upgrades(proxy)
            proxy.wait_for_metric('openai_realtime_unrecorded_upgrades_total{path="')
            metrics = proxy.wait_for_metric(f"{BILLED_ACTIVE} {fake.FINAL_SECONDS}")
            assert proxy.stop() == 0
        yield {"proxy": proxy, "service": service, "received": received, "metrics": metrics}


async def test_every_frame_is_an_event_with_its_direction_and_type(recorded, db_url):
    service: FakeLiveService = recorded["service"]
    live = [m for m in service.messages if m.path.endswith("/live/sessions")]
    events = rows(db_url, Event)
    assert [(e.direction, e.type) for e in events] == [
        ("client" if m.from_client else "server", json.loads(m.data)["type"]) for m in live
    ]
    assert [e.size_bytes for e in events] == [len(m.data) for m in live]


async def test_audio_is_kept_out_of_payloads_and_no_key_is_stored(recorded, db_url):
    events = rows(db_url, Event)
    appends = [e for e in events if e.type == "session.input_audio.append"]
    deltas = [e for e in events if e.type == "session.output_audio.delta"]
    assert {e.payload["audio"] for e in appends} == {RATE * 2 * CHUNK_MS // 1000}
    assert {e.payload["delta"] for e in deltas} == {RATE * 2 * fake.ANSWER_CHUNK_MS // 1000}
    assert KEY not in json.dumps([e.payload for e in events])


async def test_session_row_has_the_model_id_usage_cost_and_end_reason(recorded, db_url):
    (session,) = rows(db_url, RealtimeSession)
    assert (session.api, session.model, session.openai_session_id, session.path) == (
        "live",
        "gpt-live-1",
        fake.LIVE_SESSION_ID,
        "/v1/live/sessions",
    )
    assert (session.billable_seconds, session.active_seconds, session.paused_seconds) == (
        fake.FINAL_SECONDS,
        fake.FINAL_SECONDS,
        0.0,
    )
    assert (session.usage_final, session.end_reason) == (True, "close_requested")
    assert session.context_usage_ratio == fake.CONTEXT_RATIO
    assert session.seconds_cost_usd == pytest.approx(fake.FINAL_SECONDS * 0.06 / 60)


async def test_delegated_tokens_are_responses_priced_by_their_own_model(recorded, db_url):
    by_id = {r.response_id: r for r in rows(db_url, Response)}
    delegated = by_id["resp_fake_0001"]
    usage = fake.RESPONSES_USAGE
    assert (delegated.model, delegated.delegation_id) == (fake.DELEGATION_MODEL, "deleg_0001")
    assert (delegated.input_tokens, delegated.cached_tokens, delegated.output_tokens) == (
        usage["input_tokens"],
        usage["cached"],
        usage["output_tokens"],
    )
    uncached = usage["input_tokens"] - usage["cached"]
    expected = (uncached * 0.25 + usage["cached"] * 0.025 + usage["output_tokens"] * 2.0) / 1e6
    assert delegated.cost_usd == pytest.approx(expected)
    (decision,) = [r for r in by_id.values() if r.response_id.startswith("decision-")]
    assert (decision.model, decision.input_tokens, decision.output_tokens) == (
        fake.DECISION_MODEL,
        fake.DECISION_USAGE["input_tokens"],
        fake.DECISION_USAGE["output_tokens"],
    )
    assert decision.cost_usd == pytest.approx((50 * 0.05 + 5 * 0.4) / 1e6)


async def test_the_answer_is_a_turn_with_its_latencies(recorded, db_url):
    (turn,) = [r for r in rows(db_url, Response) if r.response_id.startswith("live-turn-")]
    assert (turn.response_id, turn.status, turn.model) == ("live-turn-1", "completed", None)
    # The fake waits ANSWER_DELAY_S after the user's last transcript delta before it answers;
    # the relay's own timestamps of the two frames can sit closer than that on a busy machine.
    assert 0 < turn.time_to_first_audio_ms < 5000
    # Voice to voice counts from the append that held the transcript's end: earlier still.
    assert turn.voice_to_voice_ms >= turn.time_to_first_audio_ms


async def test_transcripts_and_errors_are_in_the_events(recorded, db_url):
    events = rows(db_url, Event)
    said = {
        kind: "".join(e.payload["delta"] for e in events if e.type == f"session.{kind}.delta")
        for kind in ("input_transcript", "output_transcript")
    }
    assert said == {
        "input_transcript": "".join(fake.USER_TEXT),
        "output_transcript": "".join(fake.ASSISTANT_TEXT),
    }
    (error,) = [e for e in events if e.type == "error"]
    assert (error.error_type, error.error_code) == ("invalid_request_error", "unknown_parameter")


async def test_both_audio_tracks_export_as_wav_at_16_khz(recorded, db_url, tmp_path: Path):
    chunks = rows(db_url, AudioChunk)
    assert {(c.direction, c.audio_format, c.sample_rate) for c in chunks} == {
        ("client", "pcm16", RATE),
        ("server", "pcm16", RATE),
    }
    engine = make_engine(db_url)
    with engine.connect() as connection:
        session_id = rows(db_url, RealtimeSession)[0].id
        user = export.side_plan(detail.audio_chunks(connection, session_id, "client"))
    engine.dispose()
    assert (user.rate, user.frames) == (RATE, RATE * fake.USER_SPEECH_MS // 1000)
    out = tmp_path / "assistant.wav"
    command = [sys.executable, "-m", "rtrec.cli", "export", session_id, "--format", "wav"]
    result = subprocess.run(
        [*command, "--side", "assistant", "-o", str(out), "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as wav:
        answer_ms = fake.ANSWER_CHUNKS * fake.ANSWER_CHUNK_MS
        assert (wav.getframerate(), wav.getnframes()) == (RATE, RATE * answer_ms // 1000)


async def test_metrics_show_billable_seconds_cost_and_context(recorded):
    metrics = recorded["metrics"]
    # Counted once its model is known (the client's first frame), never as `unknown`.
    assert 'openai_realtime_sessions_total{api="live",model="gpt-live-1"} 1.0' in metrics
    assert 'openai_realtime_sessions_total{api="live",model="unknown"}' not in metrics
    ttfa = 'openai_realtime_time_to_first_audio_seconds_count{api="live",model="gpt-live-1"} 1.0'
    assert ttfa in metrics
    assert f"{BILLED_ACTIVE} {fake.FINAL_SECONDS}" in metrics
    assert 'openai_realtime_context_usage_ratio_count{model="gpt-live-1"} 1.0' in metrics
    cost = 'openai_realtime_cost_usd_total{api="live",kind="session_seconds",model="gpt-live-1"}'
    assert cost in metrics
    delegated = 'openai_realtime_cost_usd_total{api="live",kind="response",model="gpt-5-mini"}'
    assert delegated in metrics


async def test_an_unknown_websocket_is_relayed_counted_and_logged_once(recorded):
    shape = "/v1/voice/streams/{id}"
    assert f'openai_realtime_unrecorded_upgrades_total{{path="{shape}"}} 2.0' in recorded["metrics"]
    proxy: ProxyProcess = recorded["proxy"]
    lines = [line for line in proxy.log.splitlines() if "without recording it" in line]
    assert len(lines) == 1
    assert shape in lines[0]
    assert "token=abc" not in proxy.log
