"""`client.live` through a real `rtrec proxy` to `rtrec simulate`'s GPT-Live: what it recorded
matches what the simulator logged (ids, usage, delegated tokens, transcripts, turns)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import pytest_asyncio
from sqlalchemy import select

from simulator import FakeRealtimeServer
from simulator.audio import tone_burst
from storage.db import make_engine
from storage.models import AudioChunk, Event, RealtimeSession, Response, table
from tests.support.proxy import proxy_runner
from tests.support.simulator import TIMEOUT, b64

pytestmark = pytest.mark.asyncio(loop_scope="module")

JSON = dict[str, Any]
APPEND_BYTES = 4800  # 100 ms of PCM16 at 24 kHz
SPOKEN = tone_burst(200, 800, 600)  # silence, speech, silence (ms): one VAD turn


def rows(db_url: str, model: type) -> list[Any]:
    engine = make_engine(db_url)
    t = table(model)
    with engine.connect() as connection:
        found = list(connection.execute(select(t).order_by(t.c.id)))
    engine.dispose()
    return found


async def one_turn(base_url: str) -> None:
    """Start with a Responses delegation, speak, wait for the usage update, close."""
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=base_url)
    async with client.live.connect() as conn:
        await conn.session.start(
            session={
                "model": "gpt-live-1",
                "delegation": {"type": "responses", "responses": {"model": "gpt-5.4"}},
            }
        )
        await asyncio.wait_for(conn.recv(), TIMEOUT)  # session.started
        for at in range(0, len(SPOKEN), APPEND_BYTES):
            await conn.session.input_audio.append(audio=b64(SPOKEN[at : at + APPEND_BYTES]))
        while (await asyncio.wait_for(conn.recv(), TIMEOUT)).type != "session.usage.updated":
            pass
        await conn.session.close()
        while (await asyncio.wait_for(conn.recv(), TIMEOUT)).type != "session.closed":
            pass


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JSON]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('live-sim') / 'rtrec.db'}"
    async with FakeRealtimeServer() as server:
        with proxy_runner(tmp_path_factory.mktemp("proxy")) as run_proxy:
            proxy = run_proxy(server.base_url, db_url)
            await one_turn(proxy.base_url)
            await server.wait_closed(1)
            assert proxy.stop() == 0
        sent = [json.loads(m.data) for m in server.messages(1, "server")]
    yield {"db_url": db_url, "sent": sent}


def _of(sent: list[JSON], event_type: str) -> list[JSON]:
    return [e for e in sent if e["type"] == event_type]


async def test_the_session_has_the_simulators_id_model_usage_and_reason(recorded):
    (session,) = rows(recorded["db_url"], RealtimeSession)
    (started,) = _of(recorded["sent"], "session.started")
    (closed,) = _of(recorded["sent"], "session.closed")
    assert (session.api, session.model, session.openai_session_id) == (
        "live",
        "gpt-live-1",
        started["session"]["id"],
    )
    assert (session.billable_seconds, session.usage_final, session.end_reason) == (
        closed["usage"]["seconds"],
        True,
        closed["reason"],
    )
    assert session.seconds_cost_usd == pytest.approx(closed["usage"]["seconds"] * 0.05 / 60)


async def test_the_delegated_response_holds_the_simulators_usage(recorded):
    (completed,) = [
        e["event"]["response"]
        for e in _of(recorded["sent"], "response.event")
        if e["event"]["type"] == "response.completed"
    ]
    by_id = {r.response_id: r for r in rows(recorded["db_url"], Response)}
    delegated = by_id[completed["id"]]
    assert (delegated.model, delegated.input_tokens, delegated.output_tokens) == (
        "gpt-5.4",
        completed["usage"]["input_tokens"],
        completed["usage"]["output_tokens"],
    )
    (turn,) = [r for r in by_id.values() if r.response_id.startswith("live-turn-")]
    assert turn.time_to_first_audio_ms is not None
    assert turn.voice_to_voice_ms is not None


async def test_transcripts_and_both_audio_sides_are_recorded(recorded):
    events = rows(recorded["db_url"], Event)
    for kind in ("input_transcript", "output_transcript"):
        said = "".join(e["delta"] for e in _of(recorded["sent"], f"session.{kind}.delta"))
        stored = "".join(e.payload["delta"] for e in events if e.type == f"session.{kind}.delta")
        assert stored == said
    audio = rows(recorded["db_url"], AudioChunk)
    sent = _of(recorded["sent"], "session.output_audio.delta")
    sent_out = sum(len(base64.b64decode(e["delta"])) for e in sent)
    assert sum(len(c.data) for c in audio if c.direction == "server") == sent_out
    assert sum(len(c.data) for c in audio if c.direction == "client") == len(SPOKEN)
