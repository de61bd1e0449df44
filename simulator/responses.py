"""Response generation: ``response.create`` planning, the event sequence, usage, rate limits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from websockets.exceptions import ConnectionClosed

from simulator import events
from simulator.audio import (
    ASSISTANT_AUDIO_MS_PER_TOKEN,
    BETA_FORMATS,
    FORMAT_FROM_GA_TYPE,
    AudioFormat,
    audio_ms,
    audio_tokens,
    text_tokens,
)
from simulator.events import JSON, new_id, obfuscation, server_event
from simulator.items import MESSAGE_OVERHEAD_TOKENS, ClientError, ConvItem, build_item
from simulator.session import as_object, check_modalities, invalid_value, normalize_ga_format

if TYPE_CHECKING:
    from simulator.connection import SimConnection

#: A model name that makes every response fail with a TPM rate-limit error (reference §2.1).
RATE_LIMITED_MODEL = "rate-limited-model"
#: The deterministic answer: one text (or transcript) delta per entry.
ANSWER_DELTAS = (
    "This",
    " is",
    " a",
    " simulated",
    " answer",
    " from",
    " the",
    " fake",
    " Realtime",
    " server.",
)
#: Length of the spoken answer.
ANSWER_AUDIO_MS = 1000


class RateLimitTracker:
    """Token/request usage over a sliding minute, for ``rate_limits.updated``."""

    GA_TOKEN_LIMIT = 40_000
    BETA_TOKEN_LIMIT = 800_000
    BETA_REQUEST_LIMIT = 5_000
    WINDOW_S = 60.0

    def __init__(self) -> None:
        self._usage: deque[tuple[float, int]] = deque()

    def record(self, tokens: int) -> None:
        self._usage.append((time.monotonic(), tokens))

    def snapshot(self, *, beta: bool) -> list[JSON]:
        now = time.monotonic()
        while self._usage and now - self._usage[0][0] > self.WINDOW_S:
            self._usage.popleft()
        used = sum(t for _, t in self._usage)
        limit = self.BETA_TOKEN_LIMIT if beta else self.GA_TOKEN_LIMIT
        tokens: JSON = {
            "name": "tokens",
            "limit": limit,
            "remaining": max(0, limit - used),
            "reset_seconds": round(self.WINDOW_S * min(used, limit) / limit, 3),
        }
        if not beta:
            return [tokens]
        requests = len(self._usage)
        return [
            {
                "name": "requests",
                "limit": self.BETA_REQUEST_LIMIT,
                "remaining": max(0, self.BETA_REQUEST_LIMIT - requests),
                "reset_seconds": round(self.WINDOW_S * requests / self.BETA_REQUEST_LIMIT, 3),
            },
            tokens,
        ]


@dataclass
class ResponsePlan:
    modalities: list[str]
    voice: Any
    output_format: AudioFormat
    max_output_tokens: int | str
    metadata: JSON | None
    temperature: float
    in_conversation: bool
    input_text: int
    input_audio: int
    cached_text: int
    cached_audio: int


@dataclass
class ActiveResponse:
    id: str
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None


def plan_response(conn: SimConnection, params: JSON) -> ResponsePlan:
    """Resolve ``response.create`` overrides against the session and price the context."""
    session = conn.session
    if conn.beta:
        modalities = (
            check_modalities(params["modalities"], "response.modalities")
            if "modalities" in params
            else session.modalities
        )
        if "audio" in modalities:
            modalities = ["text", "audio"]
        voice = params.get("voice", session.voice)
        fmt_value = params.get("output_audio_format", session.output_format)
        if fmt_value not in BETA_FORMATS:
            err = invalid_value("response.output_audio_format", fmt_value, list(BETA_FORMATS))
            raise ClientError(err.code, err.message, err.param)
        output_format = cast(AudioFormat, fmt_value)
        max_tokens = params.get("max_response_output_tokens", session.max_output_tokens)
        temperature = params.get("temperature", session.temperature)
    else:
        modalities = (
            check_modalities(params["output_modalities"], "response.output_modalities")
            if "output_modalities" in params
            else session.modalities
        )
        modalities = ["audio"] if "audio" in modalities else ["text"]
        output = as_object(
            as_object(params.get("audio", {}), "response.audio").get("output", {}),
            "response.audio.output",
        )
        voice = output.get("voice", session.voice)
        output_format = (
            FORMAT_FROM_GA_TYPE[
                normalize_ga_format(output["format"], "response.audio.output.format")["type"]
            ]
            if "format" in output
            else session.output_format
        )
        max_tokens = params.get("max_output_tokens", session.max_output_tokens)
        temperature = session.temperature
    conversation = params.get("conversation", "auto")
    if conversation not in ("auto", "none"):
        err = invalid_value("response.conversation", conversation, ["auto", "none"])
        raise ClientError(err.code, err.message, err.param)
    metadata = params.get("metadata")
    instructions = params.get("instructions", session.instructions)
    in_text = text_tokens(str(instructions)) + MESSAGE_OVERHEAD_TOKENS
    in_audio = 0
    if "input" in params:
        raw_input = params["input"]
        if not isinstance(raw_input, list):
            raise ClientError(
                "invalid_type",
                "Invalid type for 'response.input': expected an array.",
                "response.input",
            )
        context: list[ConvItem] = []
        for index, raw in enumerate(raw_input):
            ref = as_object(raw, f"response.input[{index}]")
            found = conn.find(ref.get("id")) if ref.get("type") == "item_reference" else -1
            if found >= 0:
                context.append(conn.conversation[found])
            else:
                context.append(
                    build_item(
                        ref,
                        f"response.input[{index}]",
                        beta=conn.beta,
                        input_format=session.input_format,
                    )
                )
    else:
        context = list(conn.conversation)
    for conv_item in context:
        in_text += conv_item.text_tokens
        in_audio += conv_item.audio_tokens
    previous = conn.previous_context
    cached_text = min(previous[0], in_text) if previous else 0
    cached_audio = min(previous[1], in_audio) if previous else 0
    conn.previous_context = (in_text, in_audio)
    return ResponsePlan(
        modalities=modalities,
        voice=voice,
        output_format=output_format,
        max_output_tokens=max_tokens if isinstance(max_tokens, int | str) else "inf",
        metadata=cast(JSON | None, metadata),
        temperature=float(temperature) if isinstance(temperature, int | float) else 0.8,
        in_conversation=conversation == "auto",
        input_text=in_text,
        input_audio=in_audio,
        cached_text=cached_text,
        cached_audio=cached_audio,
    )


def _response_object(
    conn: SimConnection,
    active: ActiveResponse,
    plan: ResponsePlan,
    *,
    status: str,
    status_details: JSON | None = None,
    output: list[JSON] | None = None,
    usage: JSON | None = None,
) -> JSON:
    return events.response_object(
        beta=conn.beta,
        response_id=active.id,
        status=status,
        status_details=status_details,
        output=output or [],
        conversation_id=conn.conversation_id if plan.in_conversation else None,
        modalities=plan.modalities,
        voice=plan.voice,
        output_format=plan.output_format,
        max_output_tokens=plan.max_output_tokens,
        usage=usage,
        metadata=plan.metadata,
        temperature=plan.temperature,
    )


async def _pause(conn: SimConnection, active: ActiveResponse) -> None:
    if conn.delta_interval_s > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(active.cancel_event.wait(), conn.delta_interval_s)
    else:
        await asyncio.sleep(0)


async def run_response(conn: SimConnection, active: ActiveResponse, plan: ResponsePlan) -> None:
    """Emit one response's whole event sequence (the task behind ``conn.active``)."""
    try:
        await _generate(conn, active, plan)
    except ConnectionClosed:
        pass
    finally:
        if conn.active is active:
            conn.active = None


async def _generate(conn: SimConnection, active: ActiveResponse, plan: ResponsePlan) -> None:
    await conn.send(
        server_event(
            "response.created", response=_response_object(conn, active, plan, status="in_progress")
        )
    )
    if conn.model == RATE_LIMITED_MODEL:
        await _fail_rate_limited(conn, active, plan)
        return
    audio = "audio" in plan.modalities
    item_id = new_id("item")
    previous = conn.last_item_id() if plan.in_conversation else None
    conv_item = ConvItem(
        id=item_id,
        item=events.message_item(
            beta=conn.beta, item_id=item_id, status="in_progress", role="assistant", content=[]
        ),
        text_tokens=MESSAGE_OVERHEAD_TOKENS,
        audio_tokens=0,
        audio_format=plan.output_format,
    )
    added_item = json.loads(json.dumps(conv_item.item))
    if plan.in_conversation:
        conn.conversation.append(conv_item)
    ids: JSON = {
        "response_id": active.id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
    }
    await conn.send(
        server_event(
            "response.output_item.added", response_id=active.id, output_index=0, item=added_item
        )
    )
    if plan.in_conversation:
        kind = "conversation.item.created" if conn.beta else "conversation.item.added"
        await conn.send(server_event(kind, previous_item_id=previous, item=added_item))
    await conn.send(
        server_event(
            "response.content_part.added", **ids, part=events.content_part(audio=audio, text="")
        )
    )

    text = ""
    sound = bytearray()
    limit = plan.max_output_tokens if isinstance(plan.max_output_tokens, int) else None
    incomplete = False
    n_steps = math.ceil(ANSWER_AUDIO_MS / conn.audio_chunk_ms) if audio else len(ANSWER_DELTAS)
    for step in range(n_steps):
        if active.cancel_reason is not None:
            break
        if limit is not None and _output_tokens(text, sound, plan) >= limit:
            incomplete = True
            break
        if step < len(ANSWER_DELTAS):
            delta = ANSWER_DELTAS[step]
            text += delta
            if audio:
                kind = (
                    "response.audio_transcript.delta"
                    if conn.beta
                    else "response.output_audio_transcript.delta"
                )
            else:
                kind = "response.text.delta" if conn.beta else "response.output_text.delta"
            fields: JSON = {**ids, "delta": delta}
            if not conn.beta:
                fields["obfuscation"] = obfuscation()
            await conn.send(server_event(kind, **fields))
        if audio:
            sent_ms = audio_ms(len(sound), plan.output_format)
            chunk = conn.synth.chunk(
                min(conn.audio_chunk_ms, ANSWER_AUDIO_MS - sent_ms), plan.output_format
            )
            sound += chunk
            kind = "response.audio.delta" if conn.beta else "response.output_audio.delta"
            await conn.send(
                server_event(kind, **ids, delta=base64.b64encode(chunk).decode("ascii"))
            )
        await _pause(conn, active)
    cancel_reason = active.cancel_reason  # a cancel arriving after the last delta changes nothing
    cancelled = cancel_reason is not None

    if audio:
        done_audio = "response.audio.done" if conn.beta else "response.output_audio.done"
        await conn.send(server_event(done_audio, **ids))
        done_transcript = (
            "response.audio_transcript.done"
            if conn.beta
            else "response.output_audio_transcript.done"
        )
        await conn.send(server_event(done_transcript, **ids, transcript=text))
    else:
        done_text = "response.text.done" if conn.beta else "response.output_text.done"
        await conn.send(server_event(done_text, **ids, text=text))
    await conn.send(
        server_event(
            "response.content_part.done",
            **ids,
            part=events.content_part(audio=audio, text=text),
        )
    )

    item_status = "incomplete" if cancelled or incomplete else "completed"
    conv_item.item["status"] = item_status
    conv_item.item["content"] = [events.assistant_content(beta=conn.beta, audio=audio, text=text)]
    conv_item.audio = bytes(sound)
    if audio:
        conv_item.audio_tokens = audio_tokens(conv_item.audio_ms, ASSISTANT_AUDIO_MS_PER_TOKEN)
        if sound:
            conn.assistant_audio_present = True
    else:
        conv_item.text_tokens += text_tokens(text)
    final_item = json.loads(json.dumps(conv_item.item))
    if plan.in_conversation and not conn.beta:
        await conn.send(
            server_event("conversation.item.done", previous_item_id=previous, item=final_item)
        )
    await conn.send(
        server_event(
            "response.output_item.done", response_id=active.id, output_index=0, item=final_item
        )
    )

    out_text = text_tokens(text)
    out_audio = audio_tokens(audio_ms(len(sound), plan.output_format), ASSISTANT_AUDIO_MS_PER_TOKEN)
    usage = events.usage_object(
        beta=conn.beta,
        input_text=plan.input_text,
        input_audio=plan.input_audio,
        cached_text=plan.cached_text,
        cached_audio=plan.cached_audio,
        output_text=out_text,
        output_audio=out_audio,
    )
    if cancelled:
        status, details = "cancelled", {"type": "cancelled", "reason": cancel_reason}
    elif incomplete:
        status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
    else:
        status, details = "completed", None
    done = _response_object(
        conn, active, plan, status=status, status_details=details, output=[final_item], usage=usage
    )
    # Free the conversation before response.done goes out, so a client reacting to it with
    # response.create is never told that a response is still active.
    if conn.active is active:
        conn.active = None
    await conn.send(server_event("response.done", response=done))
    conn.rate_limits.record(int(usage["total_tokens"]))
    await conn.send(
        server_event("rate_limits.updated", rate_limits=conn.rate_limits.snapshot(beta=conn.beta))
    )


def _output_tokens(text: str, sound: bytearray, plan: ResponsePlan) -> int:
    ms = audio_ms(len(sound), plan.output_format)
    return text_tokens(text) + audio_tokens(ms, ASSISTANT_AUDIO_MS_PER_TOKEN)


async def _fail_rate_limited(
    conn: SimConnection, active: ActiveResponse, plan: ResponsePlan
) -> None:
    requested = plan.input_text + plan.input_audio + 4096
    details = {
        "type": "failed",
        "error": {
            "type": "tokens",
            "code": "rate_limit_exceeded",
            "message": (
                f"Rate limit reached for {conn.model} in organization org-simulator on tokens "
                f"per min (TPM): Limit {RateLimitTracker.GA_TOKEN_LIMIT}, Used "
                f"{RateLimitTracker.GA_TOKEN_LIMIT}, Requested {requested}. "
                "Please try again in 6s."
            ),
        },
    }
    done = _response_object(conn, active, plan, status="failed", status_details=details, usage=None)
    if conn.active is active:
        conn.active = None
    await conn.send(server_event("response.done", response=done))
