"""WAV files from recorded audio chunks, for the players and downloads of the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from analysis.export import ExportError, conversation_audio, side_audio, wav_header


def _ulaw_to_linear(byte: int) -> int:
    byte = ~byte & 0xFF
    magnitude = (((byte & 0x0F) << 3) + 0x84) << ((byte & 0x70) >> 4)
    return (0x84 - magnitude) if byte & 0x80 else (magnitude - 0x84)


def _alaw_to_linear(byte: int) -> int:
    byte ^= 0x55
    exponent, mantissa = (byte & 0x70) >> 4, byte & 0x0F
    step = (mantissa << 4) + (8 if exponent == 0 else 0x108)
    magnitude = step << max(exponent - 1, 0)
    return magnitude if byte & 0x80 else -magnitude


@cache
def _g711_table(audio_format: str) -> np.ndarray[Any, np.dtype[np.int16]]:
    decode = _ulaw_to_linear if audio_format == "g711_ulaw" else _alaw_to_linear
    return np.array([decode(b) for b in range(256)], dtype="<i2")


def playable(audio_format: str, data: bytes) -> tuple[str, bytes]:
    """PCM16 for any recorded format: browsers do not all play G.711 WAV files."""
    if audio_format == "pcm16":
        return audio_format, data
    samples = _g711_table(audio_format)[np.frombuffer(data, dtype=np.uint8)]
    return "pcm16", samples.tobytes()


def wav_bytes(audio_format: str, sample_rate: int, channels: int, data: bytes) -> bytes:
    return wav_header(audio_format, sample_rate, channels, len(data)) + data


def chunks_to_wav(chunks: Sequence[dict[str, Any]], *, for_player: bool = False) -> bytes | None:
    """One side's chunks back to back as a WAV file; None when there are none or formats mix."""
    if not chunks:
        return None
    try:
        audio_format, rate, data = side_audio(chunks)
    except ExportError:
        return None
    if for_player:
        audio_format, data = playable(audio_format, data)
    return wav_bytes(audio_format, rate, 1, data)


def conversation_wav(
    user: Sequence[dict[str, Any]], assistant: Sequence[dict[str, Any]]
) -> bytes | None:
    """Stereo WAV (user left, assistant right, as relayed in time); None if the formats differ."""
    if not user or not assistant:
        return chunks_to_wav(user or assistant)
    try:
        audio_format, rate, data = conversation_audio(user, assistant)
    except ExportError:
        return None
    return wav_bytes(audio_format, rate, 2, data)
