"""The input audio buffer's client events: appends, server-VAD turns, commits, transcription."""

from __future__ import annotations

import math

from simulator import events
from simulator.audio import USER_AUDIO_MS_PER_TOKEN, audio_ms, audio_tokens
from simulator.events import JSON, new_id, obfuscation, server_event
from simulator.generate import start_response
from simulator.items import MESSAGE_OVERHEAD_TOKENS, ConvItem, decode_audio
from simulator.params import ClientError
from simulator.state import ConnectionState
from simulator.vad import VadEvent, VadSettings

#: Minimum audio for ``input_audio_buffer.commit`` (the real API rejects less).
MIN_COMMIT_MS = 100.0
#: While server VAD hears no speech, older audio is dropped (VAD drops silence; bounds memory).
IDLE_BUFFER_MS = 10_000.0


# --------------------------------------------------------------------------- client events
async def on_append(state: ConnectionState, event: JSON) -> None:
    """``input_audio_buffer.append``: buffer the audio and run server VAD over it."""
    data = decode_audio(event.get("audio"), "audio")
    buffer, fmt = state.input, state.session.input_format
    ms_before = buffer.total_ms
    buffer.data += data
    buffer.total_ms += audio_ms(len(data), fmt)
    turn_detection = state.session.turn_detection
    if turn_detection is None:
        buffer.vad.reset()
        return
    settings = VadSettings.from_turn_detection(turn_detection)
    for vad_event in buffer.vad.feed(data, fmt, ms_before, settings):
        await _on_vad_event(state, vad_event, settings)
    if not buffer.vad.speaking:
        buffer.drop_old(fmt, max(IDLE_BUFFER_MS, settings.prefix_padding_ms))


async def on_commit(state: ConnectionState, event: JSON) -> None:
    """``input_audio_buffer.commit``: the whole buffer becomes a user item (ends any speech)."""
    buffered_ms = state.input.buffered_ms(state.session.input_format)
    if buffered_ms < MIN_COMMIT_MS:
        raise ClientError(
            "input_audio_buffer_commit_empty",
            "Error committing input audio buffer: buffer too small. Expected at least "
            f"{MIN_COMMIT_MS:.0f}ms of audio, but buffer only has {buffered_ms:.2f}ms of "
            "audio.",
        )
    buffer = state.input
    item_id = buffer.speech_item_id
    if item_id is not None:
        buffer.vad.reset()
        await _send_speech_stopped(state, item_id, buffer.total_ms)
    await _commit(state, item_id or new_id("item"), buffer.take_all())


async def on_clear(state: ConnectionState, event: JSON) -> None:
    state.input.clear()
    await state.send(server_event("input_audio_buffer.cleared"))


# --------------------------------------------------------------------------- server VAD
async def _on_vad_event(state: ConnectionState, vad_event: VadEvent, settings: VadSettings) -> None:
    buffer = state.input
    if vad_event.kind == "start":
        start_ms = max(0.0, buffer.start_ms, vad_event.ms - settings.prefix_padding_ms)
        buffer.speech_item_id = new_id("item")
        buffer.speech_start_ms = start_ms
        await state.send(
            server_event(
                "input_audio_buffer.speech_started",
                audio_start_ms=round(start_ms),
                item_id=buffer.speech_item_id,
            )
        )
        if state.active is not None and state.session.interrupt_response:
            await state.cancel_active("turn_detected")  # barge-in
        return
    item_id = buffer.speech_item_id or new_id("item")
    await _send_speech_stopped(state, item_id, vad_event.ms)
    audio = buffer.take(state.session.input_format, buffer.speech_start_ms, vad_event.ms)
    await _commit(state, item_id, audio)


async def _send_speech_stopped(state: ConnectionState, item_id: str, end_ms: float) -> None:
    await state.send(
        server_event(
            "input_audio_buffer.speech_stopped", audio_end_ms=round(end_ms), item_id=item_id
        )
    )


# --------------------------------------------------------------------------- commit
async def _commit(state: ConnectionState, item_id: str, audio: bytes) -> None:
    """Announce the committed user item, transcribe it, and answer when the session says so."""
    state.input.speech_item_id = None
    fmt = state.session.input_format
    previous = state.last_item_id()
    await state.send(
        server_event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
    )
    ms = audio_ms(len(audio), fmt)
    conv_item = ConvItem(
        id=item_id,
        item=events.message_item(
            beta=state.beta,
            item_id=item_id,
            status="completed",
            role="user",
            content=[{"type": "input_audio", "transcript": None}],
        ),
        text_tokens=MESSAGE_OVERHEAD_TOKENS,
        audio_tokens=audio_tokens(ms, USER_AUDIO_MS_PER_TOKEN),
        audio=audio,
        audio_format=fmt,
    )
    state.conversation.append(conv_item)
    await state.announce_item(conv_item, previous)
    model = state.session.transcription_model
    if model is not None:
        await _transcribe(state, conv_item, model, ms)
    if state.session.create_response and state.active is None:
        start_response(state, {})


async def _transcribe(state: ConnectionState, conv_item: ConvItem, model: str, ms: float) -> None:
    transcript = f"This is a simulated transcript of {ms / 1000:.1f} seconds of audio."
    logprobs = state.session.include_logprobs
    if model != "whisper-1":
        words = transcript.split(" ")
        thirds = max(1, math.ceil(len(words) / 3))
        for start in range(0, len(words), thirds):
            chunk = " ".join(words[start : start + thirds])
            delta = chunk if start == 0 else " " + chunk
            fields: JSON = {"item_id": conv_item.id, "content_index": 0, "delta": delta}
            if logprobs:
                fields["logprobs"] = events.logprobs_for(delta)
            if not state.beta:
                fields["obfuscation"] = obfuscation()
            await state.send(
                server_event("conversation.item.input_audio_transcription.delta", **fields)
            )
    done: JSON = {
        "item_id": conv_item.id,
        "content_index": 0,
        "transcript": transcript,
        "usage": events.transcription_usage(model, ms, transcript),
    }
    if logprobs:
        done["logprobs"] = events.logprobs_for(transcript)
    conv_item.item["content"][0]["transcript"] = transcript
    await state.send(server_event("conversation.item.input_audio_transcription.completed", **done))
