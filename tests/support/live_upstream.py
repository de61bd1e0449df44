"""A hand-written fake GPT-Live service on 127.0.0.1: answers `session.start` with SDK-valid events.

The script: once the client has streamed `USER_SPEECH_MS` of audio, the user's transcript, an
answer (output audio and transcript), a delegation with Responses usage, a Decisions answer and a
usage update; `session.update` gets an `error`; `session.close` gets `session.closed`. Any other
path is an echo server (for the unrecorded-upgrade test). Every frame is logged both ways.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from tests.support.net import free_port

LIVE_SESSION_ID = "live_fake_0001"
USER_SPEECH_MS = 400
ANSWER_DELAY_S = 0.05
ANSWER_CHUNKS, ANSWER_CHUNK_MS = 3, 100
DELEGATION_MODEL, DECISION_MODEL = "gpt-5-mini", "gpt-5-nano"
RESPONSES_USAGE = {"input_tokens": 120, "cached": 20, "output_tokens": 30}
DECISION_USAGE = {"input_tokens": 50, "output_tokens": 5}
BILLED_SECONDS = 2.0  # in session.usage.updated
FINAL_SECONDS = 3.0  # in session.closed
CONTEXT_RATIO = 0.125
USER_TEXT, ASSISTANT_TEXT = ["Hello", " there"], ["Hi", ", how can I help?"]


def tone(ms: int, rate: int, freq: float = 330.0) -> bytes:
    """`ms` of PCM16 mono at `rate`."""
    samples = rate * ms // 1000
    return struct.pack(
        f"<{samples}h",
        *(int(6000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(samples)),
    )


def _tokens(input_tokens: int, output_tokens: int, cached: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


@dataclass
class LiveScript:
    """What one primary socket's fake session says, as plain events (SDK-valid, see tests)."""

    model: str
    audio_format: dict[str, Any]
    counter: int = 0

    def _id(self) -> str:
        self.counter += 1
        return f"event_{self.counter:04d}"

    def resource(self) -> dict[str, Any]:
        return {
            "id": LIVE_SESSION_ID,
            "expires_at": 1_900_000_000,
            "model": self.model,
            "status": "active",
            "audio": {"format": self.audio_format, "output": {"voice": "marin"}},
        }

    def started(self) -> dict[str, Any]:
        return {"type": "session.started", "event_id": self._id(), "session": self.resource()}

    def user_transcript(self) -> list[dict[str, Any]]:
        half = USER_SPEECH_MS // 2
        return [
            {
                "type": "session.input_transcript.delta",
                "event_id": self._id(),
                "delta": text,
                "start_ms": index * half,
                "end_ms": (index + 1) * half,
            }
            for index, text in enumerate(USER_TEXT)
        ]

    def answer(self) -> list[dict[str, Any]]:
        rate = int(self.audio_format["rate"])
        audio = base64.b64encode(tone(ANSWER_CHUNK_MS, rate)).decode()
        events: list[dict[str, Any]] = [
            {"type": "session.output_audio.delta", "delta": audio} for _ in range(ANSWER_CHUNKS)
        ]
        for index, text in enumerate(ASSISTANT_TEXT):
            start = USER_SPEECH_MS + index * ANSWER_CHUNK_MS
            events.append(
                {
                    "type": "session.output_transcript.delta",
                    "event_id": self._id(),
                    "delta": text,
                    "start_ms": start,
                    "end_ms": start + ANSWER_CHUNK_MS,
                }
            )
        return events

    def delegation(self) -> list[dict[str, Any]]:
        usage = RESPONSES_USAGE
        response = {
            "id": "resp_fake_0001",
            "object": "response",
            "model": DELEGATION_MODEL,
            "status": "completed",
            "usage": _tokens(usage["input_tokens"], usage["output_tokens"], usage["cached"]),
        }
        return [
            {
                "type": "session.delegation.created",
                "event_id": self._id(),
                "offset_ms": USER_SPEECH_MS,
                "delegation": {
                    "id": "deleg_0001",
                    "target": "responses",
                    "type": "delegation",
                    "response_id": "resp_fake_0001",
                },
            },
            {
                "type": "response.event",
                "event_id": self._id(),
                "delegation_id": "deleg_0001",
                "event": {"type": "response.completed", "sequence_number": 7, "response": response},
            },
            {
                "type": "decision.event",
                "event_id": self._id(),
                "delegation_id": None,
                "trigger_id": "trig_0001",
                "source_event_id": "event_0002",
                "source_event_type": "session.input_transcript.delta",
                "event": {
                    "type": "decision.completed",
                    "decision": {
                        "answers": [{"type": "refusal", "name": "intent"}],
                        "model": DECISION_MODEL,
                        "usage": _tokens(**DECISION_USAGE),
                    },
                },
            },
        ]

    def usage(self) -> dict[str, Any]:
        return {
            "type": "session.usage.updated",
            "event_id": self._id(),
            "usage": {"seconds": BILLED_SECONDS},
            "context_window": {"usage_ratio": CONTEXT_RATIO},
        }

    def error(self) -> dict[str, Any]:
        return {
            "type": "error",
            "event_id": self._id(),
            "error": {
                "type": "invalid_request_error",
                "code": "unknown_parameter",
                "message": "Unknown parameter: 'session.voice'.",
                "param": "session.voice",
            },
        }

    def closed(self) -> dict[str, Any]:
        return {
            "type": "session.closed",
            "event_id": self._id(),
            "reason": "close_requested",
            "session": self.resource(),
            "usage": {"seconds": FINAL_SECONDS},
        }


@dataclass
class Logged:
    path: str
    from_client: bool
    data: str | bytes


@dataclass
class FakeLiveService:
    """`async with FakeLiveService() as service:` serves on `service.base_url` until the end."""

    messages: list[Logged] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    port: int = 0
    _server: Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeLiveService:
        self.port = free_port()
        self._server = await serve(self._handle, "127.0.0.1", self.port, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def sent(self, path_end: str = "/live/sessions") -> list[dict[str, Any]]:
        """The JSON events this service sent on sockets whose path ends with `path_end`."""
        return [
            json.loads(m.data)
            for m in self.messages
            if not m.from_client and m.path.endswith(path_end)
        ]

    async def _send(self, ws: ServerConnection, path: str, event: dict[str, Any]) -> None:
        data = json.dumps(event)
        self.messages.append(Logged(path, False, data))
        await ws.send(data)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path
        self.paths.append(path)
        if not path.endswith("/live/sessions"):
            async for data in ws:
                self.messages.append(Logged(path, True, data))
                self.messages.append(Logged(path, False, data))
                await ws.send(data)
            return
        await self._live(ws, path)

    async def _live(self, ws: ServerConnection, path: str) -> None:
        script: LiveScript | None = None
        heard_bytes = 0
        answered = False
        async for data in ws:
            self.messages.append(Logged(path, True, data))
            event = json.loads(data)
            if event["type"] == "session.start":
                session = event["session"]
                fmt = session.get("audio", {}).get("format", {"type": "audio/pcm", "rate": 24000})
                script = LiveScript(session["model"], fmt)
                await self._send(ws, path, script.started())
            elif script is None:
                continue
            elif event["type"] == "session.input_audio.append":
                heard_bytes += len(base64.b64decode(event["audio"]))
                heard_ms = heard_bytes * 1000 // (2 * int(script.audio_format["rate"]))
                if heard_ms >= USER_SPEECH_MS and not answered:
                    answered = True
                    await self._answer(ws, path, script)
            elif event["type"] == "session.update":
                await self._send(ws, path, script.error())
            elif event["type"] == "session.close":
                await self._send(ws, path, script.closed())
                await ws.close()

    async def _answer(self, ws: ServerConnection, path: str, script: LiveScript) -> None:
        for event in script.user_transcript():
            await self._send(ws, path, event)
        await asyncio.sleep(ANSWER_DELAY_S)
        for event in [*script.answer(), *script.delegation(), script.usage()]:
            await self._send(ws, path, event)
