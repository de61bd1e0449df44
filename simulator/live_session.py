"""One simulated GPT-Live session, independent of its transport: client events go in through
:meth:`LiveSession.handle`, server events come out through the ``emit`` callback.

The WebSocket front end (:mod:`simulator.server`) feeds it frames; a WebRTC data channel or a
sideband could feed it the same way. Turns are found by the simulator's energy VAD on the input
audio, as GPT-Live is full duplex and the client never commits a turn.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from simulator.audio import AudioFormat, audio_ms
from simulator.events import JSON, new_id
from simulator.live_config import apply_update, check_start
from simulator.live_delegation import decision
from simulator.live_events import (
    appended,
    decision_event,
    expiry_from_now,
    live_error,
    live_event,
    new_session_id,
    session_closed,
    session_resource,
)
from simulator.live_turns import LiveClock, delegate, play_fixture, run_turn, send_usage
from simulator.pacing import Pacing
from simulator.params import ClientError, invalid_value
from simulator.vad import EnergyVad, VadSettings

Emit = Callable[[JSON], Awaitable[None]]
#: A model whose sessions are refused after the upgrade, like a full concurrent-session quota.
LIVE_AT_CAPACITY_MODEL = "gpt-live-at-capacity"
#: WebSocket close codes: the client broke the protocol / try again later (admission).
CLOSE_PROTOCOL = 1008
CLOSE_TRY_AGAIN = 1013
CLIENT_TYPES = (
    "session.start",
    "session.update",
    "session.input_audio.append",
    "session.input_audio.mute",
    "session.input_audio.unmute",
    "session.output_audio.fixture.play",
    "session.instructions.append",
    "session.thinking.append",
    "session.commentary.append",
    "decision.create",
    "decision.item.create",
    "decision.item.delete",
    "response.item.create",
    "response.create",
    "session.close",
)


class LiveSession:
    """The protocol state of one Live session; :attr:`ended` says when to close the transport."""

    def __init__(
        self,
        emit: Emit,
        *,
        pacing: Pacing | None = None,
        chunk_ms: int = 100,
        session_id: str | None = None,
        on_speech: Callable[[], None] | None = None,
    ) -> None:
        """``session_id`` is the call's when a call made the session (a fresh one otherwise);
        ``on_speech`` hears each start of the user's speech (a call's line stops its audio)."""
        self.clock = LiveClock(emit=emit, pacing=pacing or Pacing(), chunk_ms=chunk_ms)
        self._session_id = session_id or new_session_id()
        self._on_speech = on_speech
        self.config: JSON = {}
        self.resource: JSON | None = None
        #: ``(close code, reason)`` once the session is over and the socket should close.
        self.ended: tuple[int, str] | None = None
        self._vad = EnergyVad()
        self._muted = False
        self._speech_start_ms = 0
        self._turn: asyncio.Task[None] | None = None
        #: Decisions input items by id, in the order the client created them.
        self._decision_items: dict[str, JSON] = {}

    @property
    def format(self) -> AudioFormat:
        return self.clock.format

    async def emit(self, event: JSON) -> None:
        await self.clock.emit(event)

    # ----------------------------------------------------------------- frames
    async def open(self) -> None:
        """Nothing to send: on GPT-Live the client speaks first (``session.start``)."""

    async def handle(self, message: str | bytes) -> None:
        """Process one client frame; a bad one gets an ``error`` event and changes nothing."""
        if self.ended is not None:  # frames that crossed the close on the wire go unanswered
            return
        client_event_id: str | None = None
        try:
            event = _parse(message)
            raw_id = event.get("event_id")
            client_event_id = raw_id if isinstance(raw_id, str) else None
            await self._dispatch(event, client_event_id)
        except ClientError as err:
            await self.emit(
                live_error(err.code, err.message, param=err.param, client_event_id=client_event_id)
            )
            if self.resource is None and self.ended is None and _first_frame_error(err):
                self.ended = (CLOSE_PROTOCOL, "session.start expected")

    async def finish_turn(self) -> None:
        """Wait until the model has finished the turn it is speaking, if any."""
        if self._turn is not None:
            await asyncio.gather(self._turn, return_exceptions=True)

    async def shutdown(self) -> None:
        """Stop the turn in progress (the transport is gone or the session closed)."""
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.cancel()
            # A turn that failed because the transport went away has nothing more to say.
            await asyncio.gather(turn, return_exceptions=True)

    async def _dispatch(self, event: JSON, client_event_id: str | None) -> None:
        kind = event.get("type")
        if kind not in CLIENT_TYPES:
            raise invalid_value("type", kind, list(CLIENT_TYPES))
        if self.resource is None and kind != "session.start":
            raise ClientError(
                "session_not_started",
                f"The first event must be 'session.start', not '{kind}'.",
                "type",
            )
        handler = getattr(self, "_on_" + str(kind).replace(".", "_"))
        await handler(event, client_event_id)

    # ----------------------------------------------------------------- lifecycle
    async def _on_session_start(self, event: JSON, client_event_id: str | None) -> None:
        if self.resource is not None:
            raise ClientError("session_already_started", "The session has already started.")
        config, fmt = check_start(event.get("session"))
        if config["model"] == LIVE_AT_CAPACITY_MODEL:
            await self._refuse_admission(config["model"], client_event_id)
            return
        self.config = config
        self.clock.format = fmt
        self.clock.started_at = time.monotonic()
        self.resource = session_resource(self._session_id, config, fmt, expiry_from_now())
        await self.emit(live_event("session.started", client_event_id, session=self.resource))

    async def _refuse_admission(self, model: str, client_event_id: str | None) -> None:
        """An admission error after a successful upgrade (the SDK's ``recv`` expects these)."""
        await self.emit(
            live_error(
                "session_limit_reached",
                f"Too many concurrent sessions for {model}. Try again later.",
                client_event_id=client_event_id,
                error_type="rate_limit_error",
            )
        )
        self.ended = (CLOSE_TRY_AGAIN, "session_limit_reached")

    async def _on_session_update(self, event: JSON, client_event_id: str | None) -> None:
        assert self.resource is not None
        apply_update(self.config, event.get("session"))
        self.resource["delegation"] = self.config.get("delegation")
        self.resource["triggers"] = list(self.config.get("triggers") or [])
        await self.emit(live_event("session.updated", client_event_id, session=self.resource))

    async def _on_session_close(self, event: JSON, client_event_id: str | None) -> None:
        assert self.resource is not None
        await self.shutdown()
        usage = self.clock.usage()
        await self.emit(session_closed("close_requested", self.resource, usage, client_event_id))
        self.ended = (1000, "")

    # ----------------------------------------------------------------- audio in
    async def _on_session_input_audio_append(self, event: JSON, _: str | None) -> None:
        audio = _decode_audio(event.get("audio"))
        start_ms = self.clock.input_ms
        self.clock.input_ms += audio_ms(len(audio), self.format)
        if not self._muted:  # muted input reaches the model as silence: no turns
            for found in self._vad.feed(audio, self.format, start_ms, VadSettings()):
                await self._on_vad(found.kind, found.ms)
        await send_usage(self.clock, only_if_due=True)

    async def _on_vad(self, kind: str, ms: int) -> None:
        if kind == "start":
            self._speech_start_ms = ms
            if self._on_speech is not None:
                self._on_speech()
            await self.shutdown()  # barge-in: the user talks over the model
            return
        self._turn = asyncio.create_task(
            run_turn(self.clock, self.config, self._speech_start_ms, ms), name="live-turn"
        )

    async def _on_session_input_audio_mute(self, _: JSON, client_event_id: str | None) -> None:
        self._muted = True
        self._vad.reset()
        await self.emit(live_event("session.input_audio.muted", client_event_id))

    async def _on_session_input_audio_unmute(self, _: JSON, client_event_id: str | None) -> None:
        self._muted = False
        await self.emit(live_event("session.input_audio.unmuted", client_event_id))

    # ----------------------------------------------------------------- context and fixtures
    async def _on_session_output_audio_fixture_play(
        self, event: JSON, client_event_id: str | None
    ) -> None:
        audio = _decode_audio(event.get("audio"))
        await self.emit(live_event("session.output_audio.fixture.playing", client_event_id))
        await self.shutdown()  # a fixture interrupts the model's speech
        self._turn = asyncio.create_task(
            play_fixture(self.clock, audio_ms(len(audio), "pcm16"), client_event_id)
        )

    async def _append_context(self, kind: str, event: JSON, client_event_id: str | None) -> None:
        if not isinstance(event.get("content"), str):
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'content'.", "content"
            )
        at_ms = self.clock.now_ms
        await self.emit(appended(kind, at_ms, at_ms, client_event_id))

    async def _on_session_instructions_append(self, event: JSON, cid: str | None) -> None:
        await self._append_context("instructions", event, cid)

    async def _on_session_thinking_append(self, event: JSON, cid: str | None) -> None:
        await self._append_context("thinking", event, cid)

    async def _on_session_commentary_append(self, event: JSON, cid: str | None) -> None:
        await self._append_context("commentary", event, cid)

    # ----------------------------------------------------------------- backends on request
    def _delegation(self, kind: str, command: str) -> JSON:
        delegation = self.config.get("delegation") or {}
        if delegation.get("type") != kind:
            raise ClientError(
                "invalid_request",
                f"'{command}' needs a session with '{kind}' delegation.",
                "session.delegation",
            )
        return dict(delegation)

    async def _on_decision_create(self, event: JSON, client_event_id: str | None) -> None:
        if client_event_id is None:
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'event_id'.", "event_id"
            )
        settings = self._delegation("decisions", "decision.create").get("decisions") or {}
        context = " ".join(
            json.dumps(item.get("content")) for item in self._decision_items.values()
        )
        result = decision(str(settings.get("model")), settings.get("questions") or [], context)
        await self.emit(decision_event(result))

    async def _on_decision_item_create(self, event: JSON, client_event_id: str | None) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'item'.", "item"
            )
        item_id = item.get("id") or new_id("item")
        if item_id in self._decision_items:
            raise ClientError(
                "duplicate_item_id", f"Item with id '{item_id}' already exists.", "item.id"
            )
        stored = self._decision_items[item_id] = {**item, "id": item_id}
        await self.emit(live_event("decision.item.created", client_event_id, item=stored))

    async def _on_decision_item_delete(self, event: JSON, client_event_id: str | None) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or self._decision_items.pop(item_id, None) is None:
            raise ClientError(
                "item_not_found", f"Item with id '{item_id}' does not exist.", "item_id"
            )
        await self.emit(live_event("decision.item.deleted", client_event_id, item_id=item_id))

    async def _on_response_item_create(self, event: JSON, _: str | None) -> None:
        self._delegation("responses", "response.item.create")
        if not isinstance(event.get("item"), dict):
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'item'.", "item"
            )

    async def _on_response_create(self, _: JSON, __: str | None) -> None:
        delegation = self._delegation("responses", "response.create")
        await delegate(self.clock, delegation, "", self.clock.now_ms)


def _parse(message: str | bytes) -> JSON:
    if isinstance(message, bytes):
        raise ClientError("invalid_event", "Binary frames are not supported; send JSON text.")
    try:
        obj: Any = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ClientError("invalid_json", f"Invalid JSON: {exc.msg}.") from None
    if not isinstance(obj, dict):
        raise ClientError("invalid_json", "Invalid event: expected a JSON object.")
    return obj


def _decode_audio(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ClientError(
            "missing_required_parameter", "Missing required parameter: 'audio'.", "audio"
        )
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ClientError("invalid_value", "Invalid 'audio': not base64.", "audio") from None


def _first_frame_error(err: ClientError) -> bool:
    """Whether a failure before ``session.start`` ends the connection: anything but a
    ``session.start`` with a bad config (which the client may correct and resend)."""
    return err.code == "session_not_started" or err.param in ("type", None)
