"""GPT-Live sessions recorded for real: the SDK's `client.live` through `rtrec proxy` to the
simulator, for the dashboard, export and diff tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from sqlalchemy import select

from simulator import FakeRealtimeServer
from simulator.audio import AudioFormat, bytes_per_ms, tone_burst
from storage.db import make_engine
from storage.models import RealtimeSession, table
from tests.support.proxy import proxy_runner
from tests.support.simulator import TIMEOUT, b64

JSON = dict[str, Any]
RESPONSES_DELEGATION = {"type": "responses", "responses": {"model": "gpt-5.4"}}
DECISIONS_DELEGATION = {
    "type": "decisions",
    "decisions": {
        "model": "gpt-5-mini",
        "questions": [
            {
                "type": "choice",
                "name": "intent",
                "instructions": "What does the user want?",
                "choices": [{"value": "refund"}, {"value": "status"}],
            }
        ],
    },
}
# Prices for the delegated models, which the built-in table does not know (test values).
PRICING = """
[models."gpt-5.4"]
text_input = 1.25
text_output = 10.0

[models."gpt-5-mini"]
text_input = 0.25
text_output = 2.0
"""
# The simulator's GPT-Live audio configurations: PCM16 at 24 or 16 kHz, G.711 mu-law.
FORMATS: dict[str, tuple[AudioFormat, JSON]] = {
    "pcm16": ("pcm16", {"type": "audio/pcm", "rate": 24_000}),
    "pcm16_16k": ("pcm16_16k", {"type": "audio/pcm", "rate": 16_000}),
    "g711_ulaw": ("g711_ulaw", {"type": "audio/pcmu", "rate": 8_000}),
}


@dataclass
class LiveScript:
    """What one session does: its audio format, delegation and number of spoken turns."""

    audio: str = "pcm16"
    delegation: JSON = field(default_factory=lambda: RESPONSES_DELEGATION)
    turns: int = 2


def _spoken(audio: str) -> tuple[bytes, int]:
    """One sentence the simulator's VAD hears, and the bytes of 100 ms, in `audio`'s format."""
    fmt = FORMATS[audio][0]
    return tone_burst(200, 800, 600, fmt), bytes_per_ms(fmt) * 100


async def run_session(base_url: str, script: LiveScript) -> None:
    """Start, speak `script.turns` sentences (each answered), then close and read the close."""
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=base_url)
    spoken, step = _spoken(script.audio)
    session = {
        "model": "gpt-live-1",
        "audio": {"format": FORMATS[script.audio][1]},
        "delegation": script.delegation,
    }
    async with client.live.connect() as conn:
        await conn.session.start(session=session)  # type: ignore[arg-type]
        await asyncio.wait_for(conn.recv(), TIMEOUT)  # session.started
        for _ in range(script.turns):
            for at in range(0, len(spoken), step):
                await conn.session.input_audio.append(audio=b64(spoken[at : at + step]))
            while (await asyncio.wait_for(conn.recv(), TIMEOUT)).type != "session.usage.updated":
                pass
        await conn.session.close()
        while (await asyncio.wait_for(conn.recv(), TIMEOUT)).type != "session.closed":
            pass


async def record_live(db_url: str, folder: Path, scripts: list[LiveScript]) -> list[JSON]:
    """Records one session per script in `db_url`; returns, per session in order, its id and the
    events the simulator sent on it."""
    recorded: list[JSON] = []
    async with FakeRealtimeServer() as server:
        with proxy_runner(folder) as run_proxy:
            pricing = folder / "pricing.toml"
            pricing.write_text(PRICING)
            proxy = run_proxy(server.base_url, db_url, "--pricing", str(pricing))
            for number, script in enumerate(scripts, start=1):
                await run_session(proxy.base_url, script)
                await server.wait_closed(number)
                sent = [json.loads(m.data) for m in server.messages(number, "server")]
                recorded.append({"sent": sent})
            assert proxy.stop() == 0
    engine = make_engine(db_url)
    sessions = table(RealtimeSession)
    with engine.connect() as connection:
        ids = list(connection.execute(select(sessions.c.id).order_by(sessions.c.started_at)))
    engine.dispose()
    for found, (session_id,) in zip(recorded, ids, strict=True):
        found["session_id"] = session_id
    return recorded


def of_type(sent: list[JSON], event_type: str) -> list[JSON]:
    return [e for e in sent if e["type"] == event_type]
