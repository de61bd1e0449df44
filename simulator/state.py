"""What one simulated connection knows (session, conversation, input audio, the active response)
and how it sends; the event handlers and generators take this, never the connection itself."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from simulator import events
from simulator.audio import SineSynth
from simulator.events import JSON, new_id, server_event
from simulator.input_buffer import InputBuffer
from simulator.items import ConvItem
from simulator.pacing import Pacing
from simulator.responses import ActiveResponse, RateLimitTracker
from simulator.session import SessionConfig

SendText = Callable[[str], Awaitable[None]]


class ConnectionState:
    """The state of one connection that client events change and responses stream from."""

    def __init__(
        self,
        *,
        beta: bool,
        transcription: bool,
        model: str,
        send_text: SendText,
        rate_limits: RateLimitTracker,
        pacing: Pacing | None = None,
        audio_chunk_ms: int = 100,
    ) -> None:
        self.beta = beta
        self.model = model
        self.session = SessionConfig.create(
            beta=beta,
            transcription=transcription,
            model=model,
            session_id=new_id("sess"),
            now=time.time(),
        )
        self._send_text = send_text
        self.rate_limits = rate_limits
        self.pacing = pacing or Pacing()
        self.audio_chunk_ms = max(1, audio_chunk_ms)
        self.conversation_id = new_id("conv")
        self.conversation: list[ConvItem] = []
        self.input = InputBuffer()
        self.active: ActiveResponse | None = None
        self.assistant_audio_present = False
        #: The (text, audio) input tokens of the last response: what the next one finds cached.
        self.previous_context: tuple[int, int] | None = None
        self.synth = SineSynth()
        #: The tasks streaming responses, cancelled when the socket goes.
        self.response_tasks: set[asyncio.Task[None]] = set()

    @property
    def transcription(self) -> bool:
        return self.session.transcription

    # ----------------------------------------------------------------- sending
    async def send(self, event: JSON) -> None:
        await self._send_text(json.dumps(event, separators=(",", ":"), ensure_ascii=False))

    async def send_error(
        self, code: str | None, message: str, param: str | None, client_event_id: str | None
    ) -> None:
        await self.send(
            events.error_event(code, message, param=param, client_event_id=client_event_id)
        )

    async def announce_item(self, conv_item: ConvItem, previous: str | None) -> None:
        """GA: ``conversation.item.added`` + ``.done``; beta: ``conversation.item.created``."""
        if self.beta:
            await self.send(
                server_event(
                    "conversation.item.created", previous_item_id=previous, item=conv_item.item
                )
            )
            return
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send(server_event(kind, previous_item_id=previous, item=conv_item.item))

    # ----------------------------------------------------------------- conversation
    def last_item_id(self) -> str | None:
        return self.conversation[-1].id if self.conversation else None

    # ----------------------------------------------------------------- the active response
    async def cancel_active(self, reason: str) -> None:
        """Stop the active response (``response.done`` status ``cancelled``) and wait for it."""
        active = self.active
        if active is None:
            return
        if active.cancel_reason is None:
            active.cancel_reason = reason
        active.cancel_event.set()
        if active.task is not None and active.task is not asyncio.current_task():
            await asyncio.wait({active.task})
