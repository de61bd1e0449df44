"""The input audio buffer of one connection: appends, server-VAD turns, commits, transcription."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator import events
from simulator.audio import (
    USER_AUDIO_MS_PER_TOKEN,
    AudioFormat,
    audio_ms,
    audio_tokens,
    bytes_per_ms,
)
from simulator.events import JSON, new_id, obfuscation, server_event
from simulator.items import MESSAGE_OVERHEAD_TOKENS, ClientError, ConvItem, decode_audio
from simulator.responses import plan_response
from simulator.vad import EnergyVad, VadEvent, VadSettings

if TYPE_CHECKING:
    from simulator.connection import SimConnection

#: Minimum audio for ``input_audio_buffer.commit`` (the real API rejects less).
MIN_COMMIT_MS = 100.0
#: While server VAD hears no speech, older audio is dropped (VAD drops silence; bounds memory).
IDLE_BUFFER_MS = 10_000.0


class InputBuffer:
    """Uncommitted input audio, where it sits in the session's audio, and the VAD's turn state."""

    def __init__(self) -> None:
        self.data = bytearray()
        #: Where :attr:`data` begins, in ms of all audio appended during the session.
        self.start_ms = 0.0
        #: All audio appended during the session, in ms (the clock of ``audio_*_ms`` fields).
        self.total_ms = 0.0
        #: The user item of the speech in progress (set by ``speech_started``).
        self.speech_item_id: str | None = None
        self.speech_start_ms = 0.0
        self.vad = EnergyVad()

    def buffered_ms(self, fmt: AudioFormat) -> float:
        return audio_ms(len(self.data), fmt)

    def take(self, fmt: AudioFormat, start_ms: float, end_ms: float) -> bytes:
        """Remove and return the audio from ``start_ms`` to ``end_ms``; audio before is dropped."""
        per_ms = bytes_per_ms(fmt)
        sample = 2 if fmt == "pcm16" else 1
        begin = _align(max(0.0, (start_ms - self.start_ms) * per_ms), sample)
        end = min(len(self.data), max(begin, _align((end_ms - self.start_ms) * per_ms, sample)))
        audio = bytes(self.data[begin:end])
        del self.data[:end]
        self.start_ms += end / per_ms
        return audio

    def take_all(self) -> bytes:
        audio = bytes(self.data)
        self.data.clear()
        self.start_ms = self.total_ms
        return audio

    def drop_old(self, fmt: AudioFormat, keep_ms: float) -> None:
        """Keep only the newest ``keep_ms`` of audio."""
        if self.total_ms - self.start_ms > keep_ms:
            self.take(fmt, self.start_ms, self.total_ms - keep_ms)

    def clear(self) -> None:
        self.take_all()
        self.speech_item_id = None
        self.vad.reset()


def _align(offset: float, sample: int) -> int:
    return round(offset) // sample * sample


# --------------------------------------------------------------------------- client events
async def on_append(conn: SimConnection, event: JSON) -> None:
    """``input_audio_buffer.append``: buffer the audio and run server VAD over it."""
    data = decode_audio(event.get("audio"), "audio")
    buffer, fmt = conn.input, conn.session.input_format
    ms_before = buffer.total_ms
    buffer.data += data
    buffer.total_ms += audio_ms(len(data), fmt)
    turn_detection = conn.session.turn_detection
    if turn_detection is None:
        buffer.vad.reset()
        return
    settings = VadSettings.from_turn_detection(turn_detection)
    for vad_event in buffer.vad.feed(data, fmt, ms_before, settings):
        await _on_vad_event(conn, vad_event, settings)
    if not buffer.vad.speaking:
        buffer.drop_old(fmt, max(IDLE_BUFFER_MS, settings.prefix_padding_ms))


async def on_commit(conn: SimConnection, event: JSON) -> None:
    """``input_audio_buffer.commit``: the whole buffer becomes a user item (ends any speech)."""
    buffered_ms = conn.input.buffered_ms(conn.session.input_format)
    if buffered_ms < MIN_COMMIT_MS:
        raise ClientError(
            "input_audio_buffer_commit_empty",
            "Error committing input audio buffer: buffer too small. Expected at least "
            f"{MIN_COMMIT_MS:.0f}ms of audio, but buffer only has {buffered_ms:.2f}ms of "
            "audio.",
        )
    buffer = conn.input
    item_id = buffer.speech_item_id
    if item_id is not None:
        buffer.vad.reset()
        await _send_speech_stopped(conn, item_id, buffer.total_ms)
    await _commit(conn, item_id or new_id("item"), buffer.take_all())


async def on_clear(conn: SimConnection, event: JSON) -> None:
    conn.input.clear()
    await conn.send(server_event("input_audio_buffer.cleared"))


# --------------------------------------------------------------------------- server VAD
async def _on_vad_event(conn: SimConnection, vad_event: VadEvent, settings: VadSettings) -> None:
    buffer = conn.input
    if vad_event.kind == "start":
        start_ms = max(0.0, buffer.start_ms, vad_event.ms - settings.prefix_padding_ms)
        buffer.speech_item_id = new_id("item")
        buffer.speech_start_ms = start_ms
        await conn.send(
            server_event(
                "input_audio_buffer.speech_started",
                audio_start_ms=round(start_ms),
                item_id=buffer.speech_item_id,
            )
        )
        if conn.active is not None and conn.session.interrupt_response:
            await conn.cancel_active("turn_detected")  # barge-in
        return
    item_id = buffer.speech_item_id or new_id("item")
    await _send_speech_stopped(conn, item_id, vad_event.ms)
    audio = buffer.take(conn.session.input_format, buffer.speech_start_ms, vad_event.ms)
    await _commit(conn, item_id, audio)


async def _send_speech_stopped(conn: SimConnection, item_id: str, end_ms: float) -> None:
    await conn.send(
        server_event(
            "input_audio_buffer.speech_stopped", audio_end_ms=round(end_ms), item_id=item_id
        )
    )


# --------------------------------------------------------------------------- commit
async def _commit(conn: SimConnection, item_id: str, audio: bytes) -> None:
    """Announce the committed user item, transcribe it, and answer when the session says so."""
    conn.input.speech_item_id = None
    fmt = conn.session.input_format
    previous = conn.last_item_id()
    await conn.send(
        server_event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
    )
    ms = audio_ms(len(audio), fmt)
    conv_item = ConvItem(
        id=item_id,
        item=events.message_item(
            beta=conn.beta,
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
    conn.conversation.append(conv_item)
    await conn.announce_item(conv_item, previous)
    model = conn.session.transcription_model
    if model is not None:
        await _transcribe(conn, conv_item, model, ms)
    if conn.session.create_response and conn.active is None:
        conn.start_response(plan_response(conn, {}))


async def _transcribe(conn: SimConnection, conv_item: ConvItem, model: str, ms: float) -> None:
    transcript = f"This is a simulated transcript of {ms / 1000:.1f} seconds of audio."
    logprobs = conn.session.include_logprobs
    if model != "whisper-1":
        words = transcript.split(" ")
        thirds = max(1, math.ceil(len(words) / 3))
        for start in range(0, len(words), thirds):
            chunk = " ".join(words[start : start + thirds])
            delta = chunk if start == 0 else " " + chunk
            fields: JSON = {"item_id": conv_item.id, "content_index": 0, "delta": delta}
            if logprobs:
                fields["logprobs"] = events.logprobs_for(delta)
            if not conn.beta:
                fields["obfuscation"] = obfuscation()
            await conn.send(
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
    await conn.send(server_event("conversation.item.input_audio_transcription.completed", **done))
