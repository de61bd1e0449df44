"""Calls that do not come over the simulator's own WebSocket (WebRTC and SIP): each call runs one
session engine (events in, events out) and fans its events out to the data channel and sidebands."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import RTCDataChannel

from simulator.call_engine import (
    Api,
    EngineFactory,
    EngineIO,
    RealtimeEngine,
    SessionConfigError,
    SessionEngine,
    Transport,
)
from simulator.events import JSON, new_id
from simulator.pacing import Pacing
from simulator.rtc_peer import OutboundAudio, RtcPeer, play_out

logger = logging.getLogger(__name__)

CallStatus = Literal["ringing", "active", "ended", "rejected"]
#: The Realtime API's data-channel label for the session's events.
EVENTS_CHANNEL = "oai-events"
Listener = Callable[[str], Awaitable[None]]
_ID_PREFIX: dict[Api, str] = {"realtime": "rtc", "live": "live"}
#: How many ended calls a long-running simulator remembers (each holds its conversation).
KEEP_ENDED_CALLS = 100
#: Events kept for a data channel that has not opened yet (a client may never open one).
MAX_BACKLOG_EVENTS = 1000


def _text(event: JSON) -> str:
    return json.dumps(event, separators=(",", ":"))


@dataclass
class Call:
    """One call: its engine, its audio line to the caller, its media (a WebRTC peer, or a
    simulated SIP line) and its listeners (the data channel and any sidebands)."""

    call_id: str
    api: Api
    transport: Transport
    audio: OutboundAudio
    engine: SessionEngine | None = None
    status: CallStatus = "ringing"
    peer: RtcPeer | None = None
    channel: RTCDataChannel | None = None
    sidebands: set[Listener] = field(default_factory=set)
    #: Events published before the data channel opened, sent to it once it does.
    backlog: list[JSON] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def session(self) -> SessionEngine:
        assert self.engine is not None, "every call gets its engine when it is made"
        return self.engine

    async def publish(self, event: JSON) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(_text(event))
        elif self.transport == "webrtc" and len(self.backlog) < MAX_BACKLOG_EVENTS:
            self.backlog.append(event)
        await self.publish_sideband(event)

    async def publish_sideband(self, event: JSON) -> None:
        for listener in list(self.sidebands):
            try:
                await listener(_text(event))
            except Exception:  # a dropped sideband must not end the call
                self.sidebands.discard(listener)

    async def feed_audio(self, pcm: bytes) -> None:
        if self.status == "active":
            await self.session.feed_audio(pcm)

    async def press_key(self, key: str) -> None:
        if self.status == "active":
            await self.session.caller_pressed(key)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` for the life of the call (cancelled at hangup)."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("call %s: a task failed", self.call_id, exc_info=task.exception())


class CallRegistry:
    """Every call the simulator knows, by id, and the transitions the call endpoints make."""

    def __init__(
        self, engines: Mapping[Api, EngineFactory] | None = None, pacing: Pacing | None = None
    ) -> None:
        """``engines`` run each API's sessions; the Realtime API's is built in (paced so)."""
        realtime = functools.partial(RealtimeEngine, pacing=pacing)
        self.engines: dict[Api, EngineFactory] = {"realtime": realtime, **(engines or {})}
        self.calls: dict[str, Call] = {}
        #: Ended calls stay listed (their status) until this many more have ended.
        self._ended: collections.deque[str] = collections.deque()

    def _new_call(self, api: Api, transport: Transport) -> Call:
        call = Call(new_id(_ID_PREFIX[api]), api, transport, OutboundAudio())
        io = EngineIO(
            call.publish,
            call.publish_sideband,
            call.audio.play,
            call.audio.clear,
            call_id=call.call_id,
            transport=transport,
            end_call=lambda: call.spawn(self.end(call)),
        )
        call.engine = self.engines[api](io)
        call.audio.on_drained = lambda: call.spawn(call.session.playback_stopped())
        self.calls[call.call_id] = call
        return call

    async def create_webrtc(
        self, api: Api, offer_sdp: str, session_config: JSON | None
    ) -> tuple[Call, str]:
        """Answer a WebRTC offer; the session's events wait for the client's ``oai-events``."""
        call = self._new_call(api, "webrtc")
        try:
            await call.session.open(session_config)
        except SessionConfigError:
            del self.calls[call.call_id]
            raise
        call.status = "active"
        call.peer = RtcPeer(call.audio, call.feed_audio, lambda ch: self._on_channel(call, ch))

        def on_state() -> None:
            # The client went away without a hangup: the call ends, as the real one does.
            if call.peer is not None and call.peer.pc.connectionState in ("failed", "closed"):
                call.spawn(self.end(call))

        call.peer.pc.on("connectionstatechange", on_state)
        return call, await call.peer.answer(offer_sdp)

    def _on_channel(self, call: Call, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL:
            return

        inbox: asyncio.Queue[str] = asyncio.Queue()

        def on_message(message: object) -> None:
            if isinstance(message, str):
                inbox.put_nowait(message)

        async def handle_in_order() -> None:
            # One at a time, as a WebSocket's events are: a response.create must not overtake
            # the session.update sent before it.
            while True:
                await call.session.handle(await inbox.get())

        call.spawn(handle_in_order())

        def on_open() -> None:
            call.channel = channel
            backlog, call.backlog = call.backlog, []
            for event in backlog:
                channel.send(_text(event))

        channel.on("message", on_message)
        if channel.readyState == "open":
            on_open()
        else:
            channel.on("open", on_open)

    def ring_sip(self, api: Api = "realtime") -> Call:
        return self._new_call(api, "sip")

    async def accept(self, call: Call, session_config: JSON) -> None:
        """Answer a ringing SIP call: the session starts and the phone line plays its audio."""
        await call.session.open(session_config)
        call.status = "active"
        call.spawn(play_out(call.audio))

    async def end(self, call: Call, status: CallStatus = "ended") -> None:
        """Hang up: stop the media and the engine; sidebands close when ``ended`` is set."""
        if call.status in ("ended", "rejected"):
            return  # already ended, or ending
        call.status = status
        for task in list(call.tasks):
            if task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await call.session.shutdown()
        call.audio.stop()
        if call.peer is not None:
            await call.peer.close()
        call.ended.set()
        self._ended.append(call.call_id)
        if len(self._ended) > KEEP_ENDED_CALLS:
            self.calls.pop(self._ended.popleft(), None)

    async def close_all(self) -> None:
        for call in list(self.calls.values()):
            await self.end(call)
