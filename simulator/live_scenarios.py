"""Scripted GPT-Live sessions over the official SDK's ``client.live`` WebSocket, reporting what
their client saw as :class:`ScenarioResult`, like the Realtime scenarios."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import openai

from simulator.audio import bytes_per_ms, tone_burst
from simulator.scenarios import APPEND_MS, ResponseOutcome, Scenario, ScenarioResult

LIVE_MODEL = "gpt-live-1"
#: Nested Responses events that end a delegated response (they carry its status and usage).
_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class LiveDemoSession:
    """A ``client.live`` connection that tallies what goes out and comes back in."""

    def __init__(self, conn: Any, result: ScenarioResult, timeout_s: float) -> None:
        self.conn = conn
        self.result = result
        self.timeout_s = timeout_s
        self.seen: set[str] = set()

    async def speak(self, audio: bytes) -> None:
        """Stream PCM16 24 kHz ``audio`` as ``session.input_audio.append`` of 100 ms each."""
        step = bytes_per_ms("pcm16") * APPEND_MS
        for start in range(0, len(audio), step):
            chunk = audio[start : start + step]
            self.result.user_audio_bytes += len(chunk)
            await self.conn.session.input_audio.append(audio=base64.b64encode(chunk).decode())

    async def until(self, *types: str) -> Any:
        """Receive until each of ``types`` has arrived since the call; return the last one."""
        waiting = list(types)
        while True:
            event = await asyncio.wait_for(self.conn.recv(), self.timeout_s)
            self._tally(event)
            if event.type in waiting:
                waiting.remove(event.type)
                if not waiting:
                    return event

    def _tally(self, event: Any) -> None:
        kind, result = event.type, self.result
        self.seen.add(kind)
        if kind == "session.started":
            result.openai_session_id = str(event.session.id)
        elif kind == "session.output_audio.delta":
            result.assistant_audio_bytes += len(base64.b64decode(event.delta))
        elif kind == "error":
            result.error_codes.append(event.error.code)
        elif kind == "response.event" and event.event.get("type") in _RESPONSE_ENDS:
            response = event.event["response"]
            result.responses.append(ResponseOutcome(response["id"], response["status"], None))

    async def close(self) -> None:
        """``session.close``, then wait for ``session.closed`` (the usage is final there)."""
        await self.conn.session.close()
        await self.until("session.closed")


async def _one_turn(s: LiveDemoSession) -> None:
    """One spoken question; the turn is over when its usage update follows the answer."""
    await s.speak(tone_burst(400, 1200, 600))
    await s.until("session.output_audio.delta")
    await s.until("session.usage.updated")


async def live_voice(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """A GPT-Live conversation: the user speaks, the model answers in its own voice."""
    result = ScenarioResult("live_voice", "live", LIVE_MODEL)
    async with client.live.connect() as conn:
        s = LiveDemoSession(conn, result, timeout_s)
        await conn.session.start(session={"model": LIVE_MODEL, "instructions": "Be brief."})
        await s.until("session.started")
        await _one_turn(s)
        await s.close()
    return result


async def live_delegation(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """A GPT-Live turn delegated to a Responses model, whose token usage comes back nested."""
    result = ScenarioResult("live_delegation", "live", LIVE_MODEL)
    result.expected_statuses = [("completed", None)]
    delegation: Any = {"type": "responses", "responses": {"model": "gpt-5.4"}}
    async with client.live.connect() as conn:
        s = LiveDemoSession(conn, result, timeout_s)
        await conn.session.start(session={"model": LIVE_MODEL, "delegation": delegation})
        await s.until("session.started")
        await _one_turn(s)
        await s.close()
    return result


LIVE_SCENARIOS: tuple[Scenario, ...] = (live_voice, live_delegation)
