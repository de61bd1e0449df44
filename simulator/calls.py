"""Calls that do not come over the simulator's own WebSocket (WebRTC and SIP): each call runs one
session engine (events in, events out) and fans its events out to the data channel and sidebands."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiortc import RTCDataChannel

from simulator.connection import SimConnection
from simulator.events import JSON, new_id
from simulator.pacing import Pacing
from simulator.responses import RateLimitTracker
from simulator.rtc_peer import RtcPeer
from simulator.state import ConnectionState

logger = logging.getLogger(__name__)

Transport = Literal["webrtc", "sip"]
CallStatus = Literal["ringing", "active", "ended", "rejected"]
#: The Realtime API's data-channel label for the session's events.
EVENTS_CHANNEL = "oai-events"
_OUTPUT_AUDIO_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})


@dataclass
class EngineIO:
    """What a call gives its session engine: where server events and assistant audio go."""

    publish: Callable[[JSON], Awaitable[None]]
    play: Callable[[bytes], None]


class SessionEngine(Protocol):
    """A session's logic behind a call: client events and caller audio in, events and audio out."""

    async def open(self, session_config: JSON | None) -> None: ...
    async def handle(self, message: str) -> None: ...
    async def feed_audio(self, pcm: bytes) -> None: ...
    async def shutdown(self) -> None: ...


EngineFactory = Callable[[EngineIO], SessionEngine]


class RealtimeEngine:
    """The Realtime API's session logic (:class:`SimConnection`) behind a call: its output audio
    deltas become RTP audio, since a call's data channel carries no audio."""

    def __init__(self, io: EngineIO, pacing: Pacing | None = None) -> None:
        self._io = io
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
        if event.get("type") in _OUTPUT_AUDIO_TYPES:
            self._io.play(base64.b64decode(str(event.get("delta", ""))))
            return
        await self._io.publish(event)

    async def open(self, session_config: JSON | None) -> None:
        await self.sim.open()
        if session_config:
            config = {k: v for k, v in session_config.items() if k != "model"}
            await self.handle(json.dumps({"type": "session.update", "session": config}))

    async def handle(self, message: str) -> None:
        await self.sim.handle(message)

    async def feed_audio(self, pcm: bytes) -> None:
        audio = base64.b64encode(pcm).decode("ascii")
        await self.sim.handle(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    async def shutdown(self) -> None:
        await self.sim.shutdown()


Listener = Callable[[str], Awaitable[None]]


@dataclass
class Call:
    """One call: its engine, its media (a WebRTC peer, or simulated SIP caller audio), its
    listeners (the data channel and any sidebands) and the events it published."""

    call_id: str
    transport: Transport
    engine: SessionEngine
    status: CallStatus = "ringing"
    peer: RtcPeer | None = None
    channel: RTCDataChannel | None = None
    sidebands: set[Listener] = field(default_factory=set)
    published: list[JSON] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def publish(self, event: JSON) -> None:
        self.published.append(event)
        text = json.dumps(event, separators=(",", ":"))
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(text)
        for listener in list(self.sidebands):
            try:
                await listener(text)
            except Exception:  # a dropped sideband must not end the call
                self.sidebands.discard(listener)

    async def feed_audio(self, pcm: bytes) -> None:
        if self.status == "active":
            await self.engine.feed_audio(pcm)


class CallRegistry:
    """Every call the simulator knows, by id, and the transitions the call endpoints make."""

    def __init__(self, engine_factory: EngineFactory | None = None) -> None:
        self._engine_factory = engine_factory or RealtimeEngine
        self.calls: dict[str, Call] = {}

    def _new_call(self, transport: Transport) -> Call:
        holder: dict[str, Call] = {}

        async def publish(event: JSON) -> None:
            await holder["call"].publish(event)

        def play(pcm: bytes) -> None:
            peer = holder["call"].peer
            if peer is not None:
                peer.outbound.play(pcm)

        call = Call(new_id("rtc"), transport, self._engine_factory(EngineIO(publish, play)))
        holder["call"] = call
        self.calls[call.call_id] = call
        return call

    async def create_webrtc(self, offer_sdp: str, session_config: JSON | None) -> tuple[Call, str]:
        """Answer a WebRTC offer; the session starts when the client opens ``oai-events``."""
        call = self._new_call("webrtc")
        call.status = "active"
        call.peer = RtcPeer(call.feed_audio, lambda channel: self._on_channel(call, channel))
        answer = await call.peer.answer(offer_sdp)
        await call.engine.open(session_config)
        return call, answer

    def _on_channel(self, call: Call, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL:
            return
        call.channel = channel

        def on_message(message: Any) -> None:
            if isinstance(message, str):
                self._spawn(call, call.engine.handle(message))

        def replay() -> None:
            # Events published before the channel opened (session.created) would otherwise be lost.
            for event in call.published:
                channel.send(json.dumps(event, separators=(",", ":")))

        channel.on("message", on_message)
        if channel.readyState == "open":
            replay()
        else:
            channel.on("open", replay)

    def ring_sip(self) -> Call:
        return self._new_call("sip")

    async def accept(self, call: Call, session_config: JSON) -> None:
        call.status = "active"
        await call.engine.open(session_config)

    def _spawn(self, call: Call, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)

    def start_task(self, call: Call, coro: Any) -> None:
        """Run ``coro`` for the life of ``call`` (cancelled at hangup)."""
        self._spawn(call, coro)

    async def end(self, call: Call, status: CallStatus = "ended") -> None:
        """Hang up: stop the media and the engine; sidebands close when ``ended`` is set."""
        if call.ended.is_set():
            return
        call.status = status
        for task in list(call.tasks):
            if task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await call.engine.shutdown()
        if call.peer is not None:
            await call.peer.close()
        call.ended.set()

    async def close_all(self) -> None:
        for call in list(self.calls.values()):
            await self.end(call)
