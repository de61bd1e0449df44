"""A GPT-Live turn: the user's transcript, the delegation it triggers, and the model's spoken answer
streamed at playback speed; plus the session clock that cumulative usage is read from."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from simulator.audio import (
    ASSISTANT_AUDIO_MS_PER_TOKEN,
    USER_AUDIO_MS_PER_TOKEN,
    AudioFormat,
    SineSynth,
    text_tokens,
)
from simulator.events import JSON, new_id
from simulator.live_delegation import DELEGATED_ANSWER, decision, responses_stream
from simulator.live_events import (
    decision_event,
    delegation_created,
    live_event,
    output_audio_delta,
    response_event,
    session_usage,
    transcript_delta,
    usage_updated,
)
from simulator.pacing import Pacing, pause

Emit = Callable[[JSON], Awaitable[None]]
#: What the simulated user says in every turn (the simulator does not recognise speech).
USER_WORDS = ("Where", " is", " my", " order?")
#: The model's own answer when nothing is delegated.
LIVE_ANSWER = ("This", " is", " a", " simulated", " answer", " from", " GPT-Live.")
ANSWER_AUDIO_MS = 1200
#: ``session.usage.updated`` goes out at least this often (in session seconds) and after turns.
USAGE_PERIOD_S = 5
#: Decisions triggers name no model; the simulator says this one answered.
TRIGGER_DECISIONS_MODEL = "gpt-5-mini"


@dataclass
class LiveClock:
    """Where a session is on its timeline (ms of audio in and out) and what it has used."""

    emit: Emit
    pacing: Pacing
    chunk_ms: int
    format: AudioFormat = "pcm16"
    started_at: float = 0.0
    input_ms: float = 0.0
    output_end_ms: int = 0
    context_tokens: int = 0
    #: Seconds spent in standby (a call's idle policy paused inference), billed at another rate.
    paused_seconds: float = 0.0
    usage_due_s: int = USAGE_PERIOD_S
    never: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def now_ms(self) -> int:
        return round(max(self.input_ms, self.output_end_ms))

    def seconds(self) -> int:
        """Billable whole seconds: wall time, or the audio timeline when a client streams
        faster than real time (as tests do)."""
        wall_s = time.monotonic() - self.started_at
        return int(max(wall_s, self.now_ms / 1000))

    def usage(self) -> JSON:
        seconds = self.seconds()
        return session_usage(seconds, min(seconds, int(self.paused_seconds)))


async def send_usage(clock: LiveClock, *, only_if_due: bool = False) -> None:
    """Cumulative ``session.usage.updated``: when a period has passed, or now."""
    seconds = clock.seconds()
    if only_if_due and seconds < clock.usage_due_s:
        return
    clock.usage_due_s = (seconds // USAGE_PERIOD_S + 1) * USAGE_PERIOD_S
    await clock.emit(usage_updated(clock.usage(), clock.context_tokens))


async def run_turn(clock: LiveClock, config: JSON, start_ms: int, end_ms: int) -> None:
    """Answer the speech the VAD found between ``start_ms`` and ``end_ms`` of the input."""
    user_text = "".join(USER_WORDS)
    clock.context_tokens += (end_ms - start_ms) // USER_AUDIO_MS_PER_TOKEN
    step = max(1, (end_ms - start_ms) // len(USER_WORDS))
    for n, word in enumerate(USER_WORDS):
        delta = transcript_delta("input", word, start_ms + n * step, start_ms + (n + 1) * step)
        await clock.emit(delta)
        if n == 0:
            await fire_triggers(clock, config, delta, user_text)
    delegation = config.get("delegation") or {}
    await delegate(clock, delegation, user_text, end_ms)
    await pause(clock.pacing.first_delta_s, clock.never)
    words = DELEGATED_ANSWER if delegation.get("type") == "responses" else LIVE_ANSWER
    await speak(clock, config, words)
    await send_usage(clock)


async def fire_triggers(clock: LiveClock, config: JSON, source: JSON, text: str) -> None:
    """Run the Decisions triggers configured for ``source``'s transcript event type."""
    for trigger in config.get("triggers") or []:
        if not isinstance(trigger, dict) or trigger.get("event_type") != source["type"]:
            continue
        questions = (trigger.get("decisions") or {}).get("questions") or []
        result = decision(TRIGGER_DECISIONS_MODEL, questions, text)
        await clock.emit(decision_event(result, trigger_id=new_id("trig"), source=source))


async def delegate(clock: LiveClock, delegation: JSON, task_text: str, offset_ms: int) -> None:
    """The delegation a turn hands to the configured owner, with the backend's own events."""
    target = delegation.get("type")
    if target == "responses":
        model = (delegation.get("responses") or {}).get("model") or "gpt-5.4"
        response_id, stream = responses_stream(model, task_text)
        created = delegation_created("responses", offset_ms, response_id)
        await clock.emit(created)
        for nested in stream:
            await clock.emit(response_event(nested, created["delegation"]["id"]))
            await pause(clock.pacing.text_delta_s, clock.never)
    elif target == "decisions":
        settings = delegation.get("decisions") or {}
        created = delegation_created("decisions", offset_ms)
        await clock.emit(created)
        result = decision(str(settings.get("model")), settings.get("questions") or [], task_text)
        await clock.emit(decision_event(result, delegation_id=created["delegation"]["id"]))
    elif target == "client":
        await clock.emit(delegation_created("client", offset_ms))


async def speak(clock: LiveClock, config: JSON, words: tuple[str, ...]) -> None:
    """Stream the spoken answer in chunks, each with its slice of the transcript; paced at
    playback speed (the service talks in real time) unless the pacing is as-fast-as-possible."""
    synth, chunks = SineSynth(), max(len(words), ANSWER_AUDIO_MS // clock.chunk_ms)
    start_ms = max(clock.now_ms, clock.output_end_ms)
    began = time.monotonic()
    for n in range(chunks):
        if clock.pacing.audio_speed > 0:
            await asyncio.sleep(max(0.0, began + n * clock.chunk_ms / 1000 - time.monotonic()))
        audio = synth.chunk(clock.chunk_ms, clock.format)
        at_ms = start_ms + n * clock.chunk_ms
        # Moved on before the delta goes out: a call's sideband reads the chunk's range from it.
        clock.output_end_ms = at_ms + clock.chunk_ms
        await clock.emit(output_audio_delta(base64.b64encode(audio).decode("ascii")))
        clock.context_tokens += clock.chunk_ms // ASSISTANT_AUDIO_MS_PER_TOKEN
        if n < len(words):
            delta = transcript_delta("output", words[n], at_ms, at_ms + clock.chunk_ms)
            await clock.emit(delta)
            clock.context_tokens += text_tokens(words[n])
            if n == 0:
                await fire_triggers(clock, config, delta, "".join(words))
        await pause(clock.pacing.extra_delay_s, clock.never)


async def play_fixture(clock: LiveClock, fixture_ms: float, client_event_id: str | None) -> None:
    """``session.output_audio.fixture.played`` once the fixture has drained (at playback speed)."""
    if clock.pacing.audio_speed > 0:
        await asyncio.sleep(fixture_ms / 1000)
    clock.output_end_ms = round(max(clock.now_ms, clock.output_end_ms) + fixture_ms)
    await clock.emit(live_event("session.output_audio.fixture.played", client_event_id))
