"""Responses: ``response.create`` planning, the ``response`` object, rate-limit bookkeeping."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from simulator import events
from simulator.audio import BETA_FORMATS, FORMAT_FROM_GA_TYPE, AudioFormat, text_tokens
from simulator.events import JSON
from simulator.items import MESSAGE_OVERHEAD_TOKENS, ConvItem, build_item, index_of
from simulator.params import (
    ClientError,
    as_object,
    check_modalities,
    invalid_value,
    normalize_ga_format,
)
from simulator.session import SessionConfig
from simulator.tools import choose_tool

#: A model name that makes every response fail with a TPM rate-limit error
#: (docs/realtime-api.md#responsedone-usage).
RATE_LIMITED_MODEL = "rate-limited-model"


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
    #: The function tool this response calls (``None``: a message answer).
    tool: JSON | None = None


@dataclass
class ActiveResponse:
    id: str
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Output:
    """What a response produces, after its overrides of the session's settings."""

    modalities: list[str]
    voice: Any
    output_format: AudioFormat
    max_tokens: Any
    temperature: Any


def _beta_output(params: JSON, session: SessionConfig) -> _Output:
    modalities = (
        check_modalities(params["modalities"], "response.modalities")
        if "modalities" in params
        else session.modalities
    )
    fmt_value = params.get("output_audio_format", session.output_format)
    if fmt_value not in BETA_FORMATS:
        raise invalid_value("response.output_audio_format", fmt_value, list(BETA_FORMATS))
    return _Output(
        modalities=["text", "audio"] if "audio" in modalities else modalities,
        voice=params.get("voice", session.voice),
        output_format=cast(AudioFormat, fmt_value),
        max_tokens=params.get("max_response_output_tokens", session.max_output_tokens),
        temperature=params.get("temperature", session.temperature),
    )


def _ga_output(params: JSON, session: SessionConfig) -> _Output:
    modalities = (
        check_modalities(params["output_modalities"], "response.output_modalities")
        if "output_modalities" in params
        else session.modalities
    )
    output = as_object(
        as_object(params.get("audio", {}), "response.audio").get("output", {}),
        "response.audio.output",
    )
    output_format = (
        FORMAT_FROM_GA_TYPE[
            normalize_ga_format(output["format"], "response.audio.output.format")["type"]
        ]
        if "format" in output
        else session.output_format
    )
    return _Output(
        modalities=["audio"] if "audio" in modalities else ["text"],
        voice=output.get("voice", session.voice),
        output_format=output_format,
        max_tokens=params.get("max_output_tokens", session.max_output_tokens),
        temperature=session.temperature,
    )


def _context(params: JSON, session: SessionConfig, conversation: list[ConvItem]) -> list[ConvItem]:
    """The items the response reads: `response.input` (references or new items) when given,
    else the whole conversation."""
    if "input" not in params:
        return list(conversation)
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
        found = index_of(conversation, ref.get("id")) if ref.get("type") == "item_reference" else -1
        if found >= 0:
            context.append(conversation[found])
        else:
            param = f"response.input[{index}]"
            item = build_item(ref, param, beta=session.beta, input_format=session.input_format)
            context.append(item)
    return context


def plan_response(
    params: JSON,
    *,
    session: SessionConfig,
    conversation: list[ConvItem],
    previous_context: tuple[int, int] | None,
) -> ResponsePlan:
    """Resolve ``response.create`` overrides against the session and price the context
    (``previous_context``: the input tokens of the last response, which count as cached)."""
    out = _beta_output(params, session) if session.beta else _ga_output(params, session)
    conversation_mode = params.get("conversation", "auto")
    if conversation_mode not in ("auto", "none"):
        raise invalid_value("response.conversation", conversation_mode, ["auto", "none"])
    instructions = params.get("instructions", session.instructions)
    context = _context(params, session, conversation)
    in_text = text_tokens(str(instructions)) + MESSAGE_OVERHEAD_TOKENS
    in_text += sum(conv_item.text_tokens for conv_item in context)
    in_audio = sum(conv_item.audio_tokens for conv_item in context)
    tool = choose_tool(
        params.get("tools", session.data.get("tools")),
        params.get("tool_choice", session.data.get("tool_choice", "auto")),
        context,
    )
    return ResponsePlan(
        modalities=out.modalities,
        voice=out.voice,
        output_format=out.output_format,
        max_output_tokens=out.max_tokens if isinstance(out.max_tokens, int | str) else "inf",
        metadata=cast(JSON | None, params.get("metadata")),
        temperature=float(out.temperature) if isinstance(out.temperature, int | float) else 0.8,
        in_conversation=conversation_mode == "auto",
        input_text=in_text,
        input_audio=in_audio,
        cached_text=min(previous_context[0], in_text) if previous_context else 0,
        cached_audio=min(previous_context[1], in_audio) if previous_context else 0,
        tool=tool,
    )


def response_object(
    active: ActiveResponse,
    plan: ResponsePlan,
    *,
    beta: bool,
    conversation_id: str,
    status: str,
    status_details: JSON | None = None,
    output: list[JSON] | None = None,
    usage: JSON | None = None,
) -> JSON:
    return events.response_object(
        beta=beta,
        response_id=active.id,
        status=status,
        status_details=status_details,
        output=output or [],
        conversation_id=conversation_id if plan.in_conversation else None,
        modalities=plan.modalities,
        voice=plan.voice,
        output_format=plan.output_format,
        max_output_tokens=plan.max_output_tokens,
        usage=usage,
        metadata=plan.metadata,
        temperature=plan.temperature,
    )
