"""The simulator's server VAD: speech found by energy in pcm16 and G.711, turns, barge-in."""

from __future__ import annotations

import math
import random
from array import array
from typing import Any

import pytest

from simulator import FakeRealtimeServer
from simulator.audio import (
    AudioFormat,
    alaw_to_linear,
    bytes_per_ms,
    decode_samples,
    encode_samples,
    linear_to_alaw,
    linear_to_ulaw,
    sample_rate,
    ulaw_to_linear,
)
from tests.support.simulator import Recorder, b64, done_usages, ga_client, validate_server_events

#: The VAD analyses 10 ms frames, so a position is exact to within one frame.
TOLERANCE_MS = 10
#: Speech in the generated audio starts and ends here (ms of audio appended in the session).
SPEECH_START_MS, SPEECH_END_MS = 500, 1500
#: Defaults of the GA session's server_vad (docs/realtime-api.md#latency-and-vad-events).
PREFIX_PADDING_MS, SILENCE_MS = 300, 200

JSON = dict[str, Any]


def utterance(
    fmt: AudioFormat = "pcm16",
    *,
    speech_dbfs: float = -18.0,
    noise_dbfs: float = -60.0,
    total_ms: int = 2200,
) -> bytes:
    """Room noise throughout, and a voiced tone at ``speech_dbfs`` RMS from 500 ms to 1500 ms."""
    rate = sample_rate(fmt)
    rng = random.Random(7)
    speech_amplitude = 32768 * 10 ** (speech_dbfs / 20) * math.sqrt(2)
    noise_rms = 32768 * 10 ** (noise_dbfs / 20)
    samples = array("h")
    for i in range(total_ms * rate // 1000):
        value = rng.gauss(0, noise_rms)
        if SPEECH_START_MS <= i * 1000 // rate < SPEECH_END_MS:
            value += speech_amplitude * math.sin(2 * math.pi * 180 * i / rate)
        samples.append(max(-32768, min(32767, round(value))))
    return encode_samples(samples, fmt)


async def vad_session(
    audio: bytes,
    *,
    fmt: str = "audio/pcm",
    turn_detection: JSON | None = None,
    chunk_bytes: int = 4800,
) -> list[JSON]:
    """One GA session that streams ``audio`` and waits for the answer when a turn was found."""
    audio_input: JSON = {"format": {"type": fmt}}
    if turn_detection is not None:
        audio_input["turn_detection"] = turn_detection
    async with FakeRealtimeServer() as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            update = {"type": "realtime", "audio": {"input": audio_input}}
            await rec.send({"type": "session.update", "session": update})
            await rec.until("session.updated")
            for start in range(0, len(audio), chunk_bytes):
                chunk = audio[start : start + chunk_bytes]
                await rec.send({"type": "input_audio_buffer.append", "audio": b64(chunk)})
            await rec.send({"type": "input_audio_buffer.clear"})
            await rec.until("input_audio_buffer.cleared")
            answers = (turn_detection or {}).get("create_response", True)
            if answers and "input_audio_buffer.committed" in rec.types:
                while "rate_limits.updated" not in rec.types:
                    await rec.recv()
        await server.wait_closed(1)
        return validate_server_events(server, 1, beta=False)


def first(events: list[JSON], event_type: str) -> JSON:
    return next(e for e in events if e["type"] == event_type)


async def test_speech_positions_follow_the_audio_with_default_server_vad() -> None:
    events = await vad_session(utterance())

    started = first(events, "input_audio_buffer.speech_started")
    stopped = first(events, "input_audio_buffer.speech_stopped")
    assert abs(started["audio_start_ms"] - (SPEECH_START_MS - PREFIX_PADDING_MS)) <= TOLERANCE_MS
    assert abs(stopped["audio_end_ms"] - (SPEECH_END_MS + SILENCE_MS)) <= TOLERANCE_MS
    committed = first(events, "input_audio_buffer.committed")
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    types = [e["type"] for e in events]
    assert types.index("input_audio_buffer.speech_stopped") + 1 == types.index(
        "input_audio_buffer.committed"
    )
    (usage,) = done_usages(events, beta=False)
    # Only the turn is billed, padding included: 200..1700 ms at 1 token / 100 ms.
    assert usage["input_token_details"]["audio_tokens"] == 15
    assert first(events, "response.done")["response"]["status"] == "completed"


@pytest.mark.parametrize(
    ("fmt", "ga_type"), [("g711_ulaw", "audio/pcmu"), ("g711_alaw", "audio/pcma")]
)
async def test_g711_is_decoded_before_detection(fmt: AudioFormat, ga_type: str) -> None:
    audio = utterance(fmt)
    events = await vad_session(audio, fmt=ga_type, chunk_bytes=bytes_per_ms(fmt) * 100)

    started = first(events, "input_audio_buffer.speech_started")
    stopped = first(events, "input_audio_buffer.speech_stopped")
    assert abs(started["audio_start_ms"] - 200) <= TOLERANCE_MS
    assert abs(stopped["audio_end_ms"] - 1700) <= TOLERANCE_MS


async def test_frames_split_across_odd_appends_give_the_same_turn() -> None:
    events = await vad_session(utterance(), chunk_bytes=1001)

    assert abs(first(events, "input_audio_buffer.speech_started")["audio_start_ms"] - 200) <= 10
    assert abs(first(events, "input_audio_buffer.speech_stopped")["audio_end_ms"] - 1700) <= 10


@pytest.mark.parametrize(
    ("speech_dbfs", "threshold", "detected"),
    [(-30.0, 0.5, True), (-30.0, 0.8, False), (-50.0, 0.5, False), (-50.0, 0.2, True)],
)
async def test_threshold_sets_the_level_that_counts_as_speech(
    speech_dbfs: float, threshold: float, detected: bool
) -> None:
    """threshold 0..1 maps to -70..-10 dBFS: 0.5 is -40, 0.8 is -22, 0.2 is -58 dBFS."""
    audio = utterance(speech_dbfs=speech_dbfs, noise_dbfs=-75.0)
    turn_detection = {"type": "server_vad", "threshold": threshold}
    events = await vad_session(audio, turn_detection=turn_detection)

    types = [e["type"] for e in events]
    assert ("input_audio_buffer.speech_started" in types) is detected
    assert ("input_audio_buffer.committed" in types) is detected


async def test_silence_and_noise_make_no_turn() -> None:
    events = await vad_session(utterance(speech_dbfs=-90.0, noise_dbfs=-55.0))

    assert [e["type"] for e in events][2:] == ["input_audio_buffer.cleared"]


async def test_settings_change_positions() -> None:
    turn_detection = {"type": "server_vad", "prefix_padding_ms": 100, "silence_duration_ms": 500}
    events = await vad_session(utterance(), turn_detection=turn_detection)

    assert first(events, "input_audio_buffer.speech_started")["audio_start_ms"] == 400
    assert first(events, "input_audio_buffer.speech_stopped")["audio_end_ms"] == 2000


async def test_semantic_vad_eagerness_picks_the_silence() -> None:
    turn_detection = {"type": "semantic_vad", "eagerness": "high"}
    events = await vad_session(utterance(), turn_detection=turn_detection)

    assert first(events, "input_audio_buffer.speech_stopped")["audio_end_ms"] == 1500 + 250


async def test_padding_never_reaches_before_the_session() -> None:
    events = await vad_session(utterance()[SPEECH_START_MS * 48 - 100 * 48 :])

    assert first(events, "input_audio_buffer.speech_started")["audio_start_ms"] == 0


async def test_out_of_range_threshold_is_rejected() -> None:
    vad = {"type": "server_vad", "threshold": 1.5}
    update = {"type": "realtime", "audio": {"input": {"turn_detection": vad}}}
    async with (
        FakeRealtimeServer() as server,
        ga_client(server).realtime.connect(model="gpt-realtime") as conn,
    ):
        rec = Recorder(conn)
        await rec.recv()
        await rec.send({"type": "session.update", "event_id": "evt_t", "session": update})
        error = await rec.recv()

    assert error.type == "error"
    assert error.error.code == "decimal_above_max_value"
    assert error.error.param == "session.audio.input.turn_detection.threshold"


@pytest.mark.parametrize(("interrupt", "status"), [(True, "cancelled"), (False, "completed")])
async def test_speech_during_an_answer_interrupts_it_when_asked(
    interrupt: bool, status: str
) -> None:
    vad = {"type": "server_vad", "interrupt_response": interrupt, "create_response": False}
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            update = {"type": "realtime", "audio": {"input": {"turn_detection": vad}}}
            await rec.send({"type": "session.update", "session": update})
            await rec.until("session.updated")
            await rec.send({"type": "response.create"})
            await rec.until("response.output_audio.delta")
            speech = utterance()[SPEECH_START_MS * 48 : SPEECH_END_MS * 48]
            await rec.send({"type": "input_audio_buffer.append", "audio": b64(speech)})
            got = await rec.until("response.done")
        await server.wait_closed(1)
        validate_server_events(server, 1, beta=False)

    started = next(e for e in got if e.type == "input_audio_buffer.speech_started")
    assert started.audio_start_ms == 0
    assert got[-1].response.status == status
    reason = got[-1].response.status_details
    assert (reason.reason if reason else None) == ("turn_detected" if interrupt else None)


def test_g711_decoders_invert_the_encoders_within_quantisation() -> None:
    for sample in range(-32768, 32768, 97):
        for encode, decode in ((linear_to_ulaw, ulaw_to_linear), (linear_to_alaw, alaw_to_linear)):
            decoded = decode(encode(sample))
            assert abs(decoded - sample) <= max(16, abs(sample) / 16), (sample, decoded)
    assert ulaw_to_linear(0xFF) == 0
    assert list(decode_samples(bytes([0xD5, 0x55]), "g711_alaw")) == [8, -8]
