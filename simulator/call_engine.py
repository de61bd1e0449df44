"""What runs behind a call: a session engine takes client events and caller audio, and produces
server events and assistant audio. :class:`RealtimeEngine` is the Realtime API's; another API's
engine (GPT-Live's) plugs into the same call layer."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from simulator.connection import SimConnection
from simulator.events import JSON, server_event
from simulator.pacing import Pacing
from simulator.responses import RateLimitTracker
from simulator.state import ConnectionState

#: How a call reaches the service: a browser's WebRTC peer or a phone line over SIP.
Transport = Literal["webrtc", "sip"]
_OUTPUT_AUDIO_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})


@dataclass
class EngineIO:
    """What a call gives its engine: where server events go, and the assistant's audio line
    (24 kHz PCM16 mono, played in real time to the caller)."""

    publish: Callable[[JSON], Awaitable[None]]
    #: Events for the sidebands alone (GPT-Live reflects the caller's and the model's audio there).
    publish_sideband: Callable[[JSON], Awaitable[None]]
    play: Callable[[bytes], None]
    clear_audio: Callable[[], None]
    call_id: str = ""
    transport: Transport = "webrtc"
    #: Ends the call (hangs up) when the session itself ends, as a ``session.close`` does.
    end_call: Callable[[], None] = lambda: None


class SessionConfigError(ValueError):
    """The session configuration of a call's create or accept request is invalid."""


class SessionEngine(Protocol):
    """A session's logic behind a call: client events and caller audio in, events and audio out."""

    async def open(self, session_config: JSON | None) -> None:
        """Start the session with ``session_config``; raises :class:`SessionConfigError`."""
        ...

    async def handle(self, message: str) -> None: ...
    async def feed_audio(self, pcm: bytes) -> None: ...
    async def caller_pressed(self, key: str) -> None:
        """A SIP caller's DTMF keypress."""
        ...

    async def playback_stopped(self) -> None: ...
    async def shutdown(self) -> None: ...


EngineFactory = Callable[[EngineIO], SessionEngine]
#: The API a call belongs to: its ids, endpoints and session engine differ.
Api = Literal["realtime", "live"]


class RealtimeEngine:
    """The Realtime API's session logic (:class:`SimConnection`) behind a call. Its audio deltas
    become the call's audio (a call's data channel carries none), framed by the WebRTC/SIP-only
    ``output_audio_buffer.started|stopped|cleared`` events."""

    def __init__(self, io: EngineIO, pacing: Pacing | None = None) -> None:
        self._io = io
        self._playing: str | None = None  # the response whose audio is on the line
        #: Its audio is all generated (response.done) / all played out: both end the playback.
        self._generated = self._drained = False
        self._held: list[JSON] | None = None  # events kept back while the config is applied
        self.sim = SimConnection(
            ConnectionState(
                beta=False,
                transcription=False,
                model="gpt-realtime",
                send_text=self._on_text,
                rate_limits=RateLimitTracker(),
                pacing=pacing,
            )
        )

    async def _on_text(self, text: str) -> None:
        event: JSON = json.loads(text)
        if self._held is not None:
            self._held.append(event)
            return
        etype = event.get("type")
        if etype in _OUTPUT_AUDIO_TYPES:
            if self._playing is None:
                self._playing = str(event.get("response_id"))
                self._generated = False
                await self._io.publish(
                    server_event("output_audio_buffer.started", response_id=self._playing)
                )
            self._drained = False
            self._io.play(base64.b64decode(str(event.get("delta", ""))))
            return
        if etype == "response.done" and self._playing == event["response"]["id"]:
            await self._io.publish(event)
            self._generated = True
            await self._stop_if_finished()
            return
        if etype == "input_audio_buffer.speech_started":
            await self._io.publish(event)
            await self._clear_playback()  # the caller barged in: the rest of the answer is dropped
            return
        await self._io.publish(event)

    async def _clear_playback(self) -> None:
        if self._playing is not None:
            self._io.clear_audio()
            response_id, self._playing = self._playing, None
            await self._io.publish(
                server_event("output_audio_buffer.cleared", response_id=response_id)
            )

    async def open(self, session_config: JSON | None) -> None:
        """Apply the create/accept configuration first, so that ``session.created`` shows it
        (as the real service's does) and a bad one fails the HTTP request instead."""
        if session_config:
            config = {k: v for k, v in session_config.items() if k != "model"}
            self._held = []
            await self.sim.handle(json.dumps({"type": "session.update", "session": config}))
            held, self._held = self._held, None
            for event in held:
                if event.get("type") == "error":
                    raise SessionConfigError(str(event["error"]["message"]))
            model = session_config.get("model")
            if isinstance(model, str):
                self.sim.state.model = self.sim.state.session.data["model"] = model
        await self.sim.open()

    async def handle(self, message: str) -> None:
        try:
            etype = json.loads(message).get("type")
        except (ValueError, AttributeError):
            etype = None
        if etype == "output_audio_buffer.clear":
            await self._clear_playback()
            return
        await self.sim.handle(message)

    async def feed_audio(self, pcm: bytes) -> None:
        audio = base64.b64encode(pcm).decode("ascii")
        await self.sim.handle(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    async def caller_pressed(self, key: str) -> None:
        """The simulated Realtime API reports no DTMF."""

    async def playback_stopped(self) -> None:
        """The line played all queued audio: if the response is done, its playback is."""
        self._drained = True
        await self._stop_if_finished()

    async def _stop_if_finished(self) -> None:
        # A paced response can outrun its deltas for a moment; only done and drained is the end.
        if self._playing is not None and self._generated and self._drained:
            response_id, self._playing = self._playing, None
            await self._io.publish(
                server_event("output_audio_buffer.stopped", response_id=response_id)
            )

    async def shutdown(self) -> None:
        await self.sim.shutdown()
