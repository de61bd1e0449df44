"""One response's event sequence: its output item (a message or a function call), usage, limits."""

from __future__ import annotations

import asyncio
import base64
import copy
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed

from simulator import events
from simulator.audio import ASSISTANT_AUDIO_MS_PER_TOKEN, audio_ms, audio_tokens, text_tokens
from simulator.events import JSON, new_id, obfuscation, server_event
from simulator.items import MESSAGE_OVERHEAD_TOKENS, ConvItem
from simulator.pacing import pause
from simulator.responses import (
    RATE_LIMITED_MODEL,
    ActiveResponse,
    RateLimitTracker,
    ResponsePlan,
    plan_response,
    response_object,
)
from simulator.state import ConnectionState
from simulator.tools import example_arguments

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
#: Function-call arguments stream in pieces of this many characters.
ARGUMENT_DELTA_CHARS = 12


@dataclass
class Output:
    """The output item a response streamed and what it cost."""

    item: JSON
    text_tokens: int
    audio_tokens: int
    #: The cancel reason seen after the last delta (a later cancel changes nothing).
    cancel_reason: str | None
    #: ``max_output_tokens`` stopped it.
    incomplete: bool = False


def start_response(state: ConnectionState, params: JSON) -> None:
    """Plan a response from ``response.create`` parameters and start streaming it as
    ``state.active`` (a :class:`ClientError` from the plan means nothing starts)."""
    plan = plan_response(
        params,
        session=state.session,
        conversation=state.conversation,
        previous_context=state.previous_context,
    )
    state.previous_context = (plan.input_text, plan.input_audio)
    active = ActiveResponse(id=new_id("resp"))
    state.active = active
    active.task = asyncio.create_task(run_response(state, active, plan))
    state.response_tasks.add(active.task)
    active.task.add_done_callback(state.response_tasks.discard)


async def run_response(state: ConnectionState, active: ActiveResponse, plan: ResponsePlan) -> None:
    """Emit one response's whole event sequence (the task behind ``state.active``)."""
    try:
        await _generate(state, active, plan)
    except ConnectionClosed:
        pass
    finally:
        if state.active is active:
            state.active = None


async def _generate(state: ConnectionState, active: ActiveResponse, plan: ResponsePlan) -> None:
    created = response_object(
        active, plan, beta=state.beta, conversation_id=state.conversation_id, status="in_progress"
    )
    await state.send(server_event("response.created", response=created))
    if state.model == RATE_LIMITED_MODEL:
        await _fail_rate_limited(state, active, plan)
        return
    await pause(state.pacing.first_delta_s, active.cancel_event)
    stream: Callable[[ConnectionState, ActiveResponse, ResponsePlan], Awaitable[Output]]
    stream = _stream_function_call if plan.tool is not None else _stream_message
    await _finish(state, active, plan, await stream(state, active, plan))


# --------------------------------------------------------------------------- output items
async def _open_item(
    state: ConnectionState, active: ActiveResponse, plan: ResponsePlan, conv_item: ConvItem
) -> str | None:
    """``response.output_item.added`` (+ the conversation's announcement); returns the previous
    item's id."""
    previous = state.last_item_id() if plan.in_conversation else None
    added = copy.deepcopy(conv_item.item)
    if plan.in_conversation:
        state.conversation.append(conv_item)
    await state.send(
        server_event(
            "response.output_item.added", response_id=active.id, output_index=0, item=added
        )
    )
    if plan.in_conversation:
        kind = "conversation.item.created" if state.beta else "conversation.item.added"
        await state.send(server_event(kind, previous_item_id=previous, item=added))
    return previous


async def _close_item(
    state: ConnectionState,
    active: ActiveResponse,
    plan: ResponsePlan,
    conv_item: ConvItem,
    previous: str | None,
) -> JSON:
    final = copy.deepcopy(conv_item.item)
    if plan.in_conversation and not state.beta:
        await state.send(
            server_event("conversation.item.done", previous_item_id=previous, item=final)
        )
    await state.send(
        server_event("response.output_item.done", response_id=active.id, output_index=0, item=final)
    )
    return final


# --------------------------------------------------------------------------- message answers
async def _stream_message(
    state: ConnectionState, active: ActiveResponse, plan: ResponsePlan
) -> Output:
    audio = "audio" in plan.modalities
    item_id = new_id("item")
    conv_item = ConvItem(
        id=item_id,
        item=events.message_item(
            beta=state.beta, item_id=item_id, status="in_progress", role="assistant", content=[]
        ),
        text_tokens=MESSAGE_OVERHEAD_TOKENS,
        audio_tokens=0,
        audio_format=plan.output_format,
    )
    previous = await _open_item(state, active, plan, conv_item)
    ids: JSON = {
        "response_id": active.id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
    }
    part = events.content_part(audio=audio, text="")
    await state.send(server_event("response.content_part.added", **ids, part=part))
    text, sound, incomplete = await _message_deltas(state, active, plan, ids, audio=audio)
    cancel_reason = active.cancel_reason
    await _message_done_events(state, ids, text, audio=audio)

    conv_item.item["status"] = "incomplete" if cancel_reason or incomplete else "completed"
    conv_item.item["content"] = [events.assistant_content(beta=state.beta, audio=audio, text=text)]
    conv_item.audio = sound
    if audio:
        conv_item.audio_tokens = audio_tokens(conv_item.audio_ms, ASSISTANT_AUDIO_MS_PER_TOKEN)
        state.assistant_audio_present = state.assistant_audio_present or bool(sound)
    else:
        conv_item.text_tokens += text_tokens(text)
    final = await _close_item(state, active, plan, conv_item, previous)
    out_audio = audio_tokens(audio_ms(len(sound), plan.output_format), ASSISTANT_AUDIO_MS_PER_TOKEN)
    return Output(final, text_tokens(text), out_audio, cancel_reason, incomplete)


async def _message_deltas(
    state: ConnectionState, active: ActiveResponse, plan: ResponsePlan, ids: JSON, *, audio: bool
) -> tuple[str, bytes, bool]:
    """Stream the answer's deltas until done, cancelled or out of tokens."""
    text, sound = "", bytearray()
    limit = plan.max_output_tokens if isinstance(plan.max_output_tokens, int) else None
    n_steps = math.ceil(ANSWER_AUDIO_MS / state.audio_chunk_ms) if audio else len(ANSWER_DELTAS)
    for step in range(n_steps):
        if active.cancel_reason is not None:
            break
        if limit is not None and _output_tokens(text, sound, plan) >= limit:
            return text, bytes(sound), True
        if step < len(ANSWER_DELTAS):
            text += ANSWER_DELTAS[step]
            await _send_text_delta(state, ids, ANSWER_DELTAS[step], audio=audio)
        chunk_ms: float | None = None
        if audio:
            chunk_ms = min(
                state.audio_chunk_ms, ANSWER_AUDIO_MS - audio_ms(len(sound), plan.output_format)
            )
            chunk = state.synth.chunk(chunk_ms, plan.output_format)
            sound += chunk
            kind = "response.audio.delta" if state.beta else "response.output_audio.delta"
            await state.send(
                server_event(kind, **ids, delta=base64.b64encode(chunk).decode("ascii"))
            )
        await pause(state.pacing.after_delta_s(chunk_ms), active.cancel_event)
    return text, bytes(sound), False


async def _send_text_delta(state: ConnectionState, ids: JSON, delta: str, *, audio: bool) -> None:
    if audio:
        kind = (
            "response.audio_transcript.delta"
            if state.beta
            else "response.output_audio_transcript.delta"
        )
    else:
        kind = "response.text.delta" if state.beta else "response.output_text.delta"
    fields: JSON = {**ids, "delta": delta}
    if not state.beta:
        fields["obfuscation"] = obfuscation()
    await state.send(server_event(kind, **fields))


async def _message_done_events(
    state: ConnectionState, ids: JSON, text: str, *, audio: bool
) -> None:
    if audio:
        done_audio = "response.audio.done" if state.beta else "response.output_audio.done"
        await state.send(server_event(done_audio, **ids))
        done_transcript = (
            "response.audio_transcript.done"
            if state.beta
            else "response.output_audio_transcript.done"
        )
        await state.send(server_event(done_transcript, **ids, transcript=text))
    else:
        done_text = "response.text.done" if state.beta else "response.output_text.done"
        await state.send(server_event(done_text, **ids, text=text))
    part = events.content_part(audio=audio, text=text)
    await state.send(server_event("response.content_part.done", **ids, part=part))


def _output_tokens(text: str, sound: bytearray, plan: ResponsePlan) -> int:
    ms = audio_ms(len(sound), plan.output_format)
    return text_tokens(text) + audio_tokens(ms, ASSISTANT_AUDIO_MS_PER_TOKEN)


# --------------------------------------------------------------------------- function calls
async def _stream_function_call(
    state: ConnectionState, active: ActiveResponse, plan: ResponsePlan
) -> Output:
    """A ``function_call`` output item whose arguments stream as ``function_call_arguments``."""
    assert plan.tool is not None
    name = str(plan.tool["name"])
    arguments = example_arguments(plan.tool.get("parameters"))
    item_id, call_id = new_id("item"), new_id("call")
    conv_item = ConvItem(
        id=item_id,
        item=events.function_call_item(
            beta=state.beta, item_id=item_id, call_id=call_id, name=name, status="in_progress"
        ),
        text_tokens=MESSAGE_OVERHEAD_TOKENS,
        audio_tokens=0,
    )
    previous = await _open_item(state, active, plan, conv_item)
    ids: JSON = {"response_id": active.id, "item_id": item_id, "output_index": 0}
    ids["call_id"] = call_id
    sent = ""
    for start in range(0, len(arguments), ARGUMENT_DELTA_CHARS):
        if active.cancel_reason is not None:
            break
        fields: JSON = {**ids, "delta": arguments[start : start + ARGUMENT_DELTA_CHARS]}
        sent += fields["delta"]
        if not state.beta:
            fields["obfuscation"] = obfuscation()
        await state.send(server_event("response.function_call_arguments.delta", **fields))
        await pause(state.pacing.after_delta_s(None), active.cancel_event)
    cancel_reason = active.cancel_reason
    done: JSON = (
        {**ids, "arguments": sent} if state.beta else {**ids, "name": name, "arguments": sent}
    )
    await state.send(server_event("response.function_call_arguments.done", **done))
    conv_item.item["status"] = "incomplete" if cancel_reason else "completed"
    conv_item.item["arguments"] = sent
    conv_item.text_tokens += text_tokens(name + sent)
    final = await _close_item(state, active, plan, conv_item, previous)
    return Output(final, text_tokens(sent), 0, cancel_reason)


# --------------------------------------------------------------------------- the end
async def _finish(
    state: ConnectionState, active: ActiveResponse, plan: ResponsePlan, output: Output
) -> None:
    """``response.done`` with the usage, then ``rate_limits.updated``."""
    usage = events.usage_object(
        beta=state.beta,
        input_text=plan.input_text,
        input_audio=plan.input_audio,
        cached_text=plan.cached_text,
        cached_audio=plan.cached_audio,
        output_text=output.text_tokens,
        output_audio=output.audio_tokens,
    )
    details: JSON | None = None
    if output.cancel_reason is not None:
        status, details = "cancelled", {"type": "cancelled", "reason": output.cancel_reason}
    elif output.incomplete:
        status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
    else:
        status = "completed"
    done = response_object(
        active,
        plan,
        beta=state.beta,
        conversation_id=state.conversation_id,
        status=status,
        status_details=details,
        output=[output.item],
        usage=usage,
    )
    # Free the conversation before response.done goes out, so a client reacting to it with
    # response.create is never told that a response is still active.
    if state.active is active:
        state.active = None
    await state.send(server_event("response.done", response=done))
    state.rate_limits.record(int(usage["total_tokens"]))
    if state.pacing.rate_limits_delay_s > 0:
        await asyncio.sleep(state.pacing.rate_limits_delay_s)
    snapshot = state.rate_limits.snapshot(beta=state.beta)
    await state.send(server_event("rate_limits.updated", rate_limits=snapshot))


async def _fail_rate_limited(
    state: ConnectionState, active: ActiveResponse, plan: ResponsePlan
) -> None:
    requested = plan.input_text + plan.input_audio + 4096
    details = {
        "type": "failed",
        "error": {
            "type": "tokens",
            "code": "rate_limit_exceeded",
            "message": (
                f"Rate limit reached for {state.model} in organization org-simulator on tokens "
                f"per min (TPM): Limit {RateLimitTracker.GA_TOKEN_LIMIT}, Used "
                f"{RateLimitTracker.GA_TOKEN_LIMIT}, Requested {requested}. "
                "Please try again in 6s."
            ),
        },
    }
    done = response_object(
        active,
        plan,
        beta=state.beta,
        conversation_id=state.conversation_id,
        status="failed",
        status_details=details,
        usage=None,
    )
    if state.active is active:
        state.active = None
    await state.send(server_event("response.done", response=done))
