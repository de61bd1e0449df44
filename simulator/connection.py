"""The protocol state machine of one simulated Realtime connection: it checks each client event and
hands it to the handler that changes the connection's state (:mod:`simulator.state`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

from websockets.exceptions import ConnectionClosed

from simulator import turns
from simulator.audio import ASSISTANT_AUDIO_MS_PER_TOKEN, audio_tokens
from simulator.events import JSON, server_event
from simulator.generate import start_response
from simulator.items import MESSAGE_OVERHEAD_TOKENS, ConvItem, build_item, index_of
from simulator.params import ClientError, as_object, invalid_value
from simulator.state import ConnectionState

GA_CLIENT_TYPES = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)
BETA_CLIENT_TYPES = (*GA_CLIENT_TYPES, "transcription_session.update")


class SimConnection:
    """Handles the client events of one connection and produces the server's events."""

    def __init__(self, state: ConnectionState) -> None:
        self.state = state

    # ----------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Send ``session.created`` (beta transcription: ``transcription_session.created``)."""
        kind = (
            "transcription_session.created"
            if self.state.beta and self.state.transcription
            else "session.created"
        )
        await self.state.send(server_event(kind, session=self.state.session.data))

    async def shutdown(self) -> None:
        """Stop the response tasks that are still running (the socket is gone)."""
        for task in list(self.state.response_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task

    # ----------------------------------------------------------------- dispatch
    async def handle(self, message: str | bytes) -> None:
        """Process one frame from the client."""
        if isinstance(message, bytes):
            await self.state.send_error(
                "invalid_event",
                "Binary WebSocket frames are not supported. Send events as JSON text frames.",
                None,
                None,
            )
            return
        try:
            obj: Any = json.loads(message)
        except json.JSONDecodeError as exc:
            await self.state.send_error(
                "invalid_json",
                f"Invalid JSON: the event could not be parsed ({exc.msg}).",
                None,
                None,
            )
            return
        if not isinstance(obj, dict):
            await self.state.send_error(
                "invalid_json",
                f"Invalid event: expected a JSON object, but got {type(obj).__name__} instead.",
                None,
                None,
            )
            return
        event = cast(JSON, obj)
        raw_id = event.get("event_id")
        client_event_id = raw_id if isinstance(raw_id, str) else None
        try:
            await self._dispatch(event)
        except ClientError as err:
            await self.state.send_error(err.code, err.message, err.param, client_event_id)

    async def _dispatch(self, event: JSON) -> None:
        etype = event.get("type")
        if etype is None:
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'type'.", "type"
            )
        supported = BETA_CLIENT_TYPES if self.state.beta else GA_CLIENT_TYPES
        if etype not in supported:
            raise invalid_value("type", etype, list(supported))
        handlers: dict[str, Callable[[JSON], Awaitable[None]]] = {
            "session.update": self._on_session_update,
            "transcription_session.update": self._on_session_update,
            "input_audio_buffer.append": partial(turns.on_append, self.state),
            "input_audio_buffer.commit": partial(turns.on_commit, self.state),
            "input_audio_buffer.clear": partial(turns.on_clear, self.state),
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.delete": self._on_item_delete,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }
        await handlers[etype](event)

    # ----------------------------------------------------------------- session
    async def _on_session_update(self, event: JSON) -> None:
        state = self.state
        state.session.apply_update(event.get("session"), voice_locked=state.assistant_audio_present)
        if state.session.turn_detection is None:  # turning VAD off abandons the speech in progress
            state.input.vad.reset()
            state.input.speech_item_id = None
        kind = (
            "transcription_session.updated"
            if state.beta and state.transcription
            else "session.updated"
        )
        await state.send(server_event(kind, session=state.session.data))

    # ----------------------------------------------------------------- conversation items
    async def _on_item_create(self, event: JSON) -> None:
        if "item" not in event:
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'item'.", "item"
            )
        state = self.state
        conv_item = build_item(
            event["item"], "item", beta=state.beta, input_format=state.session.input_format
        )
        if index_of(state.conversation, conv_item.id) >= 0:
            raise ClientError(
                "duplicate_item_id",
                f"Item with item_id '{conv_item.id}' already exists.",
                "item.id",
            )
        if "previous_item_id" in event and event["previous_item_id"] is not None:
            previous_id = event["previous_item_id"]
            if previous_id == "root":
                index = 0
            else:
                found = index_of(state.conversation, previous_id)
                if found < 0:
                    raise ClientError(
                        "previous_item_not_found",
                        f"Previous item with item_id '{previous_id}' not found.",
                        "previous_item_id",
                    )
                index = found + 1
        else:
            index = len(state.conversation)
        previous = state.conversation[index - 1].id if index > 0 else None
        state.conversation.insert(index, conv_item)
        await state.announce_item(conv_item, previous)

    def _require_item(self, event: JSON, verb: str) -> ConvItem:
        item_id = event.get("item_id")
        if item_id is None:
            raise ClientError(
                "missing_required_parameter", "Missing required parameter: 'item_id'.", "item_id"
            )
        index = index_of(self.state.conversation, item_id)
        if index < 0:
            raise ClientError(
                f"item_{verb}_invalid_item_id",
                f"Error {verb[:-1]}ing item: the item with id '{item_id}' does not exist.",
                "item_id",
            )
        return self.state.conversation[index]

    async def _on_item_retrieve(self, event: JSON) -> None:
        conv_item = self._require_item(event, "retrieve")
        item = json.loads(json.dumps(conv_item.item))
        if conv_item.audio:
            for part in item.get("content", []):
                if part.get("type") in ("input_audio", "audio", "output_audio"):
                    part["audio"] = base64.b64encode(conv_item.audio).decode("ascii")
                    break
        await self.state.send(server_event("conversation.item.retrieved", item=item))

    async def _on_item_truncate(self, event: JSON) -> None:
        conv_item = self._require_item(event, "truncate")
        content_index = event.get("content_index", 0)
        end_ms = event.get("audio_end_ms")
        content = conv_item.item.get("content")
        if (
            conv_item.item.get("role") != "assistant"
            or not isinstance(content, list)
            or not isinstance(content_index, int)
            or not 0 <= content_index < len(content)
            or content[content_index].get("type") not in ("audio", "output_audio")
        ):
            raise ClientError(
                "invalid_value",
                "Only assistant audio content can be truncated.",
                "content_index",
            )
        if not isinstance(end_ms, int) or end_ms < 0:
            raise ClientError(
                "invalid_value", "Invalid 'audio_end_ms': expected an integer >= 0.", "audio_end_ms"
            )
        if end_ms > conv_item.audio_ms + 1e-9:
            raise ClientError(
                "invalid_value",
                f"Audio content of {conv_item.audio_ms:.0f}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
            )
        keep = round(end_ms * len(conv_item.audio) / conv_item.audio_ms) if conv_item.audio else 0
        conv_item.audio = conv_item.audio[:keep]
        conv_item.audio_tokens = audio_tokens(conv_item.audio_ms, ASSISTANT_AUDIO_MS_PER_TOKEN)
        conv_item.text_tokens = MESSAGE_OVERHEAD_TOKENS
        content[content_index]["transcript"] = ""
        await self.state.send(
            server_event(
                "conversation.item.truncated",
                item_id=conv_item.id,
                content_index=content_index,
                audio_end_ms=end_ms,
            )
        )

    async def _on_item_delete(self, event: JSON) -> None:
        conv_item = self._require_item(event, "delete")
        self.state.conversation.remove(conv_item)
        await self.state.send(server_event("conversation.item.deleted", item_id=conv_item.id))

    # ----------------------------------------------------------------- responses
    async def _on_response_create(self, event: JSON) -> None:
        active = self.state.active
        if self.state.transcription:
            raise ClientError(
                "invalid_value",
                "Invalid value: 'response.create'. Responses are not supported in transcription "
                "sessions.",
                "type",
            )
        if active is not None:
            raise ClientError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {active.id}. "
                "Wait until the response is finished before creating a new one.",
            )
        params = event.get("response")
        start_response(self.state, as_object(params, "response") if params is not None else {})

    async def _on_response_cancel(self, event: JSON) -> None:
        response_id = event.get("response_id")
        active = self.state.active
        if active is None or (response_id is not None and response_id != active.id):
            raise ClientError(
                "response_cancel_not_active", "Cancellation failed: no active response found"
            )
        await self.state.cancel_active("client_cancelled")
