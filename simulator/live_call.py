"""GPT-Live's session logic behind a WebRTC or SIP call: :class:`LiveSession` hears the caller's
audio from the media line, its spoken answers go out on that line, and the sidebands get what
GPT-Live gives them (reflected audio with its timeline, DTMF, standby)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

from simulator.call_engine import EngineIO, SessionConfigError
from simulator.events import JSON
from simulator.live_events import (
    live_error,
    live_event,
    reflected_input_audio,
    reflected_output_audio,
    session_closed,
)
from simulator.live_session import LiveSession
from simulator.pacing import Pacing

#: Reflected and call audio is PCM16 mono at 24 kHz: 48 bytes a millisecond.
PCM16_BYTES_PER_MS = 48
#: ``MediaSessionConfig``'s own fields: the call's idle policy, not the model's session.
IDLE_TIMEOUT, WAKE_POLICY = "idle_timeout_s", "wake_policy"
DTMF_KEYS = frozenset("0123456789ABCD*#")
#: Commands of the primary WebSocket only: a call's media line carries its audio.
PRIMARY_ONLY = ("session.start", "session.input_audio.append")
#: How often the idle policy looks at the line.
IDLE_CHECK_S = 0.1


class LiveCallEngine:
    """:class:`LiveSession` as a call's engine: the call's id is the session's, caller audio
    feeds it as ``session.input_audio.append`` would, and its audio plays on the call's line."""

    def __init__(self, io: EngineIO, pacing: Pacing | None = None) -> None:
        self._io = io
        self.session = LiveSession(
            self._on_event, pacing=pacing, session_id=io.call_id or None, on_speech=self._on_speech
        )
        self._held: list[JSON] | None = None  # events kept back while the session starts
        self._closed = False  # session.closed went out
        self._idle_timeout_s: float | None = None
        self._last_activity = time.monotonic()
        self._paused_at: float | None = None
        self._woken = False
        self._watchdog: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- events out
    async def _on_event(self, event: JSON) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        if event["type"] == "session.output_audio.delta":
            await self._play(event)
            return
        self._closed = self._closed or event["type"] == "session.closed"
        await self._io.publish(event)

    async def _play(self, event: JSON) -> None:
        """The model's audio goes to the caller over the line, and to the sidebands with its
        range on the session's timeline (the session has already moved its clock past it)."""
        pcm = base64.b64decode(event["delta"])
        self._io.play(pcm)
        # Busy until the line has played it: audio comes faster than real time when unpaced.
        played_s = len(pcm) / PCM16_BYTES_PER_MS / 1000
        self._last_activity = max(self._last_activity, time.monotonic()) + played_s
        end_ms = self.session.clock.output_end_ms
        start_ms = end_ms - len(pcm) // PCM16_BYTES_PER_MS
        await self._io.publish_sideband(reflected_output_audio(event["delta"], start_ms, end_ms))

    async def _error(self, code: str, message: str, param: str, client_event_id: Any) -> None:
        cid = client_event_id if isinstance(client_event_id, str) else None
        await self._io.publish(live_error(code, message, param=param, client_event_id=cid))

    # ----------------------------------------------------------------- engine protocol
    async def open(self, session_config: JSON | None) -> None:
        """Start the session with the create/accept config, before the HTTP answer: a bad
        config is that request's 400, and ``session.started`` waits for the data channel."""
        config = {k: v for k, v in (session_config or {}).items() if k != "type"}
        idle_timeout = config.pop(IDLE_TIMEOUT, None)
        config.pop(WAKE_POLICY, None)  # speech wakes the session; its threshold is not modelled
        if isinstance(config.get("audio"), dict) and "format" in config["audio"]:
            raise SessionConfigError("'session.audio.format' is negotiated by the call's media.")
        self._held = []
        await self.session.handle(json.dumps({"type": "session.start", "session": config}))
        held, self._held = self._held, None
        for event in held:
            if event["type"] == "error":
                raise SessionConfigError(str(event["error"]["message"]))
        for event in held:
            await self._on_event(event)
        if isinstance(idle_timeout, int | float) and idle_timeout > 0:
            self._idle_timeout_s = float(idle_timeout)
            self._watchdog = asyncio.create_task(self._watch_idle())

    async def handle(self, message: str) -> None:
        """A client command from the data channel or a sideband."""
        try:
            event: Any = json.loads(message)
        except ValueError:
            event = None
        kind = event.get("type") if isinstance(event, dict) else None
        cid = event.get("event_id") if isinstance(event, dict) else None
        if kind == "transport.dtmf.send":
            await self._send_dtmf(event, cid)
        elif kind in PRIMARY_ONLY:
            await self._error("invalid_event", f"'{kind}' is not accepted on a call.", "type", cid)
        elif self.session.resource is None:  # a ringing SIP call: nothing has started yet
            await self._error("session_not_started", "The call has not been accepted.", "type", cid)
        else:
            await self.session.handle(message)
            if self.session.ended is not None:  # session.close: the call ends with it
                self._io.end_call()

    async def _send_dtmf(self, event: JSON, cid: Any) -> None:
        key = event.get("event")
        if self._io.transport != "sip":
            await self._error("invalid_event", "DTMF needs a SIP call.", "type", cid)
        elif not isinstance(key, str) or key not in DTMF_KEYS:
            await self._error("invalid_value", f"Invalid DTMF key: {key!r}.", "event", cid)
        else:
            sent_cid = cid if isinstance(cid, str) else None
            await self._io.publish_sideband(live_event("transport.dtmf.sent", sent_cid, event=key))

    async def feed_audio(self, pcm: bytes) -> None:
        """The caller's audio: reflected to the sidebands (before any muting), then heard."""
        audio = base64.b64encode(pcm).decode("ascii")
        await self._io.publish_sideband(reflected_input_audio(audio))
        if self.session.resource is not None and self.session.ended is None:
            append = {"type": "session.input_audio.append", "audio": audio}
            await self.session.handle(json.dumps(append))
        if self._woken:  # the speech in this audio woke a paused session
            self._woken = False
            await self._io.publish_sideband(live_event("session.resumed"))

    async def caller_pressed(self, key: str) -> None:
        """A keypress of the (simulated) SIP caller, seen by the sidebands only."""
        await self._io.publish_sideband(live_event("transport.dtmf.received", event=key))

    async def playback_stopped(self) -> None:
        """GPT-Live has no playback events: the line draining says nothing to the client."""

    async def shutdown(self) -> None:
        """The call ended: a session still running closes with ``remote_hangup``."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        await self.session.shutdown()
        resource = self.session.resource
        if resource is not None and not self._closed:
            self._settle_pause()
            usage = self.session.clock.usage()
            await self._on_event(session_closed("remote_hangup", resource, usage))
        self.session.ended = self.session.ended or (1000, "")

    # ----------------------------------------------------------------- idle policy
    def _on_speech(self) -> None:
        """The user speaks: the model's audio on the line stops (barge-in), and a paused
        session wakes (``wake_policy`` speech)."""
        self._io.clear_audio()
        self._last_activity = time.monotonic()
        self._woken = self._paused_at is not None
        self._settle_pause()

    def _settle_pause(self) -> None:
        if self._paused_at is not None:
            self.session.clock.paused_seconds += time.monotonic() - self._paused_at
            self._paused_at = None

    async def _watch_idle(self) -> None:
        """``session.paused`` after ``idle_timeout_s`` without speech either way; to the
        sidebands only, as a data channel gets it only when its event settings allow it."""
        assert self._idle_timeout_s is not None
        while True:
            await asyncio.sleep(IDLE_CHECK_S)
            idle_s = time.monotonic() - self._last_activity
            if self._paused_at is None and idle_s >= self._idle_timeout_s:
                self._paused_at = time.monotonic()
                await self._io.publish_sideband(live_event("session.paused"))
