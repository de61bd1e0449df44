"""Scripted Realtime sessions over the official ``openai`` SDK, each saying what it should leave.

Every scenario reports what its client saw (:class:`ScenarioResult`): the session id, each
``response.done`` outcome, error codes, transcriptions and audio bytes both ways, which is what a
recording proxy in between must have recorded. ``expected_*`` say what the script aims for; on an
unpaced server a cancel or barge-in can lose the race against a response that already finished.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import openai

from simulator.audio import AudioFormat, bytes_per_ms, tone_burst

GA_MODEL = "gpt-realtime"
#: A model the beta SDK's ``session.model`` literal accepts.
BETA_MODEL = "gpt-4o-realtime-preview-2025-06-03"
#: Input audio goes out in appends of this length, as real clients stream it.
APPEND_MS = 100
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
Status = tuple[str, str | None]


@dataclass
class ResponseOutcome:
    """One ``response.done`` as the client received it."""

    response_id: str
    status: str
    reason: str | None
    function_calls: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    """What one scripted session did, as its client saw it (what a recorder should hold)."""

    name: str
    #: ``live`` for a GPT-Live session (:mod:`simulator.live_scenarios`).
    api: Literal["ga", "beta", "live"]
    #: The URL's ``model`` (``None`` for a transcription session, which has none).
    model: str | None
    transcription_only: bool = False
    expected_statuses: list[Status] = field(default_factory=list)
    expected_error_codes: list[str] = field(default_factory=list)
    openai_session_id: str = ""
    responses: list[ResponseOutcome] = field(default_factory=list)
    error_codes: list[str | None] = field(default_factory=list)
    transcriptions: int = 0
    user_audio_bytes: int = 0
    assistant_audio_bytes: int = 0
    seconds: float = 0.0

    @property
    def statuses(self) -> list[Status]:
        return [(r.status, r.reason) for r in self.responses]

    @property
    def function_calls(self) -> list[str]:
        return [name for r in self.responses for name in r.function_calls]

    @property
    def audio_both_ways(self) -> bool:
        return self.user_audio_bytes > 0 and self.assistant_audio_bytes > 0

    @property
    def as_expected(self) -> bool:
        return (
            self.statuses == self.expected_statuses
            and self.error_codes == self.expected_error_codes
        )

    def summary(self) -> str:
        statuses = ", ".join(s if r is None else f"{s}/{r}" for s, r in self.statuses) or "none"
        return (
            f"{self.name} ({self.api}): responses {statuses}; errors {len(self.error_codes)}; "
            f"transcriptions {self.transcriptions}; audio in/out {self.user_audio_bytes}/"
            f"{self.assistant_audio_bytes} B; {self.seconds:.2f} s"
        )


class RealtimeConnection(Protocol):
    """The part of the SDK's GA and beta connections the scenarios use."""

    async def recv(self) -> Any: ...
    async def send(self, event: Any) -> None: ...


class DemoSession:
    """An SDK connection that tallies what goes out and comes back in, into a result."""

    def __init__(self, conn: RealtimeConnection, result: ScenarioResult, timeout_s: float) -> None:
        self.conn = conn
        self.result = result
        self.timeout_s = timeout_s
        self.audio_heard: dict[str, int] = {}

    async def send(self, event: dict[str, Any]) -> None:
        await self.conn.send(event)

    async def speak(self, audio: bytes, fmt: AudioFormat = "pcm16") -> None:
        """Stream ``audio`` as ``input_audio_buffer.append`` events of :data:`APPEND_MS` each."""
        step = bytes_per_ms(fmt) * APPEND_MS
        for start in range(0, len(audio), step):
            chunk = audio[start : start + step]
            self.result.user_audio_bytes += len(chunk)
            encoded = base64.b64encode(chunk).decode("ascii")
            await self.send({"type": "input_audio_buffer.append", "audio": encoded})

    async def recv(self) -> Any:
        event = await asyncio.wait_for(self.conn.recv(), self.timeout_s)
        self._tally(event)
        return event

    async def until(self, *types: str) -> Any:
        """Receive until each of ``types`` has arrived (in any order); return the last one."""
        waiting = list(types)
        while True:
            event = await self.recv()
            if event.type in waiting:
                waiting.remove(event.type)
                if not waiting:
                    return event

    async def settle(self) -> None:
        """A round trip, so that every event the server sent before it has been seen."""
        await self.send({"type": "input_audio_buffer.clear"})
        await self.until("input_audio_buffer.cleared")

    def _tally(self, event: Any) -> None:
        kind, result = event.type, self.result
        if kind in ("session.created", "transcription_session.created"):
            result.openai_session_id = str(getattr(event.session, "id", None) or "")
        elif kind in ("response.output_audio.delta", "response.audio.delta"):
            heard = len(base64.b64decode(event.delta))
            result.assistant_audio_bytes += heard
            self.audio_heard[event.item_id] = self.audio_heard.get(event.item_id, 0) + heard
        elif kind == "conversation.item.input_audio_transcription.completed":
            result.transcriptions += 1
        elif kind == "error":
            result.error_codes.append(event.error.code)
        elif kind == "response.done":
            response = event.response
            details = response.status_details
            calls = [i.name for i in response.output or [] if i.type == "function_call"]
            reason = details.reason if details is not None else None
            result.responses.append(ResponseOutcome(response.id, response.status, reason, calls))


Scenario = Callable[[openai.AsyncOpenAI, float], Awaitable[ScenarioResult]]


def _user_text(text: str) -> dict[str, Any]:
    content = [{"type": "input_text", "text": text}]
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": content},
    }


def _ga_session(**settings: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", **settings}}


# --------------------------------------------------------------------------- scenarios
async def text_turn(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """A written question and answer, then a second answer the client cancels as it starts."""
    result = ScenarioResult("text", "ga", GA_MODEL)
    result.expected_statuses = [("completed", None), ("cancelled", "client_cancelled")]
    async with client.realtime.connect(model=GA_MODEL) as conn:
        s = DemoSession(conn, result, timeout_s)
        await s.until("session.created")
        no_vad = {"input": {"turn_detection": None}}
        await s.send(_ga_session(output_modalities=["text"], audio=no_vad))
        await s.until("session.updated")
        await s.send(_user_text("What is the capital of France?"))
        await s.send({"type": "response.create"})
        await s.until("response.done")
        await s.send({"type": "response.create"})
        created = await s.until("response.created")
        await s.send({"type": "response.cancel", "response_id": created.response.id})
        await s.until("response.done")
        await s.settle()
    return result


async def voice_turn(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """Spoken audio that server VAD turns into a transcribed user turn and a spoken answer."""
    result = ScenarioResult("voice", "ga", GA_MODEL, expected_statuses=[("completed", None)])
    async with client.realtime.connect(model=GA_MODEL) as conn:
        s = DemoSession(conn, result, timeout_s)
        await s.until("session.created")
        audio_input = {
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        }
        audio = {"input": audio_input, "output": {"voice": "marin"}}
        await s.send(_ga_session(output_modalities=["audio"], audio=audio))
        await s.until("session.updated")
        await s.speak(tone_burst(400, 1200, 600))
        await s.until("conversation.item.input_audio_transcription.completed", "response.done")
        await s.settle()
    return result


async def barge_in(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """The user speaks again while the answer is playing: it is cancelled (``turn_detected``),
    the client truncates what it played, and the new turn gets its own answer."""
    result = ScenarioResult("barge_in", "ga", GA_MODEL)
    result.expected_statuses = [("cancelled", "turn_detected"), ("completed", None)]
    async with client.realtime.connect(model=GA_MODEL) as conn:
        s = DemoSession(conn, result, timeout_s)
        await s.until("session.created")
        await s.send(_ga_session(audio={"input": {"turn_detection": {"type": "server_vad"}}}))
        await s.until("session.updated")
        await s.speak(tone_burst(300, 800, 500))
        playing = await s.until("response.output_audio.delta")
        await s.speak(tone_burst(0, 600, 500))
        await s.until("response.done")
        played_ms = s.audio_heard.get(playing.item_id, 0) // bytes_per_ms("pcm16")
        truncate = {"item_id": playing.item_id, "content_index": 0, "audio_end_ms": played_ms}
        await s.send({"type": "conversation.item.truncate", **truncate})
        await s.until("conversation.item.truncated", "response.done")
        await s.settle()
    return result


async def tool_call(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """The answer is a function call; the client runs it, returns the output and gets an answer."""
    result = ScenarioResult("tool_call", "ga", GA_MODEL)
    result.expected_statuses = [("completed", None), ("completed", None)]
    async with client.realtime.connect(model=GA_MODEL) as conn:
        s = DemoSession(conn, result, timeout_s)
        await s.until("session.created")
        no_vad = {"input": {"turn_detection": None}}
        settings = {"tools": [WEATHER_TOOL], "tool_choice": "auto"}
        await s.send(_ga_session(output_modalities=["text"], audio=no_vad, **settings))
        await s.until("session.updated")
        await s.send(_user_text("What's the weather in Paris?"))
        await s.send({"type": "response.create"})
        done = await s.until("response.done")
        for call in [i for i in done.response.output if i.type == "function_call"]:
            output = json.dumps({"city": "Paris", "temperature_c": 18, "sky": "cloudy"})
            item = {"type": "function_call_output", "call_id": call.call_id, "output": output}
            await s.send({"type": "conversation.item.create", "item": item})
        await s.send({"type": "response.create"})
        await s.until("response.done")
        await s.settle()
    return result


async def transcription_only(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """``?intent=transcription``: two utterances transcribed, no model and no responses."""
    result = ScenarioResult("transcription", "ga", None, transcription_only=True)
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        s = DemoSession(conn, result, timeout_s)
        await s.until("session.created")
        audio_input = {
            "transcription": {"model": "gpt-4o-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        }
        update = {"type": "transcription", "audio": {"input": audio_input}}
        await s.send({"type": "session.update", "session": update})
        await s.until("session.updated")
        await s.speak(tone_burst(200, 700, 500) + tone_burst(0, 500, 500))
        done = "conversation.item.input_audio_transcription.completed"
        await s.until(done, done)
        await s.settle()
    return result


async def client_errors(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """An unknown event type and an invalid ``session.update``; the socket stays usable."""
    result = ScenarioResult("errors", "ga", GA_MODEL, expected_statuses=[("completed", None)])
    result.expected_error_codes = ["invalid_value", "unknown_parameter"]
    async with client.realtime.connect(model=GA_MODEL) as conn:
        s = DemoSession(conn, result, timeout_s)
        await s.until("session.created")
        # Raw JSON: the SDK's types would not let these through.
        await conn.send_raw(json.dumps({"type": "no.such.event", "event_id": "evt_demo_unknown"}))
        await s.until("error")
        bad = {"type": "realtime", "voice": "alloy"}  # beta's flat key: GA wants audio.output
        update = {"type": "session.update", "event_id": "evt_demo_bad", "session": bad}
        await conn.send_raw(json.dumps(update))
        await s.until("error")
        await s.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        await s.until("response.done")
        await s.settle()
    return result


async def beta_voice(client: openai.AsyncOpenAI, timeout_s: float) -> ScenarioResult:
    """The beta interface (``OpenAI-Beta: realtime=v1``), telephony style: G.711 μ-law both ways,
    whisper-1 transcription, server VAD."""
    result = ScenarioResult("beta", "beta", BETA_MODEL, expected_statuses=[("completed", None)])
    async with client.beta.realtime.connect(model=BETA_MODEL) as conn:
        s = DemoSession(conn, result, timeout_s)
        await s.until("session.created")
        session = {
            "modalities": ["text", "audio"],
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad"},
        }
        await s.send({"type": "session.update", "session": session})
        await s.until("session.updated")
        await s.speak(tone_burst(200, 900, 500, "g711_ulaw"), "g711_ulaw")
        await s.until("conversation.item.input_audio_transcription.completed", "response.done")
        await s.settle()
    return result


SCENARIOS: tuple[Scenario, ...] = (
    text_turn,
    voice_turn,
    barge_in,
    tool_call,
    transcription_only,
    client_errors,
    beta_voice,
)
