"""Audio helpers for the simulator: format names, durations, token counts, synthesis, G.711."""

from __future__ import annotations

import math
import sys
from array import array
from functools import cache
from typing import Literal

#: ``pcm16_16k`` exists for GPT-Live, whose WebSockets also take PCM16 at 16 kHz.
AudioFormat = Literal["pcm16", "pcm16_16k", "g711_ulaw", "g711_alaw"]

#: Canonical (beta) format name -> GA ``type`` of the format object.
GA_FORMAT_TYPES: dict[str, str] = {
    "pcm16": "audio/pcm",
    "g711_ulaw": "audio/pcmu",
    "g711_alaw": "audio/pcma",
}
#: GA ``type`` of the format object -> canonical (beta) format name.
FORMAT_FROM_GA_TYPE: dict[str, AudioFormat] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "g711_ulaw",
    "audio/pcma": "g711_alaw",
}
BETA_FORMATS: tuple[AudioFormat, ...] = ("pcm16", "g711_ulaw", "g711_alaw")

PCM16_RATE = 24_000
G711_RATE = 8_000
#: The formats whose bytes are signed 16-bit little-endian samples, by sample rate.
PCM_RATES: dict[AudioFormat, int] = {"pcm16": PCM16_RATE, "pcm16_16k": 16_000}

#: Billing rates: user audio 1 token / 100 ms, assistant audio 1 token / 50 ms
#: (docs/realtime-api.md#the-session-object-and-audio-formats).
USER_AUDIO_MS_PER_TOKEN = 100
ASSISTANT_AUDIO_MS_PER_TOKEN = 50


def ga_format(fmt: AudioFormat) -> dict[str, object]:
    """The GA format object for a canonical format name."""
    if fmt in PCM_RATES:
        return {"type": "audio/pcm", "rate": PCM_RATES[fmt]}
    return {"type": GA_FORMAT_TYPES[fmt]}


def sample_rate(fmt: AudioFormat) -> int:
    return PCM_RATES.get(fmt, G711_RATE)


def bytes_per_sample(fmt: AudioFormat) -> int:
    return 2 if fmt in PCM_RATES else 1


def bytes_per_ms(fmt: AudioFormat) -> int:
    """pcm16 24 kHz: 48 bytes per ms (16 kHz: 32); G.711 8 kHz: 8 bytes per ms."""
    return sample_rate(fmt) * bytes_per_sample(fmt) // 1000


def audio_ms(n_bytes: int, fmt: AudioFormat) -> float:
    """Duration in milliseconds of ``n_bytes`` of audio in ``fmt``."""
    return n_bytes / bytes_per_ms(fmt)


def audio_tokens(ms: float, ms_per_token: int) -> int:
    """Tokens billed for ``ms`` of audio at one token per ``ms_per_token`` (rounded up)."""
    if ms <= 0:
        return 0
    return max(1, math.ceil(ms / ms_per_token - 1e-9))


def text_tokens(text: str) -> int:
    """A rough text token count, ~4 characters per token (rounded up)."""
    if not text:
        return 0
    return max(1, math.ceil(len(text) / 4))


# --------------------------------------------------------------------------- G.711 encoders
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def linear_to_ulaw(sample: int) -> int:
    """Encode one signed 16-bit sample as G.711 μ-law."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _ULAW_CLIP) + _ULAW_BIAS
    exponent = min(7, max(0, magnitude.bit_length() - 8))
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def linear_to_alaw(sample: int) -> int:
    """Encode one signed 16-bit sample as G.711 A-law."""
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = 0
    while segment < len(_ALAW_SEG_END) and value > _ALAW_SEG_END[segment]:
        segment += 1
    if segment >= len(_ALAW_SEG_END):
        return 0x7F ^ mask
    encoded = segment << 4
    encoded |= (value >> 1) & 0x0F if segment < 2 else (value >> segment) & 0x0F
    return encoded ^ mask


@cache
def _g711_table(fmt: AudioFormat) -> bytes:
    encode = linear_to_ulaw if fmt == "g711_ulaw" else linear_to_alaw
    return bytes(encode(s) for s in range(-32768, 32768))


def encode_samples(samples: array[int], fmt: AudioFormat) -> bytes:
    """Encode signed 16-bit samples (at the format's own sample rate) as ``fmt`` bytes."""
    if fmt in PCM_RATES:
        out = array("h", samples)
        if sys.byteorder != "little":
            out.byteswap()
        return out.tobytes()
    table = _g711_table(fmt)
    return bytes(table[s + 32768] for s in samples)


# --------------------------------------------------------------------------- G.711 decoders
def ulaw_to_linear(code: int) -> int:
    """Decode one G.711 μ-law byte to a signed 16-bit sample."""
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -magnitude if code & 0x80 else magnitude


def alaw_to_linear(code: int) -> int:
    """Decode one G.711 A-law byte to a signed 16-bit sample."""
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = (code & 0x0F) << 4
    magnitude = mantissa + 8 if exponent == 0 else (mantissa + 0x108) << (exponent - 1)
    return magnitude if code & 0x80 else -magnitude


@cache
def _g711_decode_table(fmt: AudioFormat) -> tuple[int, ...]:
    decode = ulaw_to_linear if fmt == "g711_ulaw" else alaw_to_linear
    return tuple(decode(code) for code in range(256))


def decode_samples(data: bytes, fmt: AudioFormat) -> array[int]:
    """Signed 16-bit samples of ``data`` in ``fmt`` (a trailing odd pcm16 byte is ignored)."""
    if fmt not in PCM_RATES:
        return array("h", map(_g711_decode_table(fmt).__getitem__, data))
    samples = array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


# --------------------------------------------------------------------------- synthesis
class SineSynth:
    """A continuous sine tone, produced chunk by chunk in any output format."""

    def __init__(self, frequency_hz: float = 440.0, amplitude: float = 0.3) -> None:
        self.frequency_hz = frequency_hz
        self.amplitude = amplitude
        self._phase = 0.0

    def chunk(self, ms: float, fmt: AudioFormat) -> bytes:
        """The next ``ms`` milliseconds of the tone, encoded as ``fmt``."""
        rate = sample_rate(fmt)
        n = round(ms * rate / 1000)
        step = 2 * math.pi * self.frequency_hz / rate
        peak = self.amplitude * 32767
        phase = self._phase
        samples = array("h", (int(peak * math.sin(phase + i * step)) for i in range(n)))
        self._phase = (phase + n * step) % (2 * math.pi)
        return encode_samples(samples, fmt)


def tone_burst(
    silence_before_ms: int,
    tone_ms: int,
    silence_after_ms: int,
    fmt: AudioFormat = "pcm16",
    *,
    fundamental_hz: float = 180.0,
    amplitude: float = 0.25,
) -> bytes:
    """Silence, a voiced tone (a fundamental and two harmonics, like a held vowel), silence."""
    rate = sample_rate(fmt)
    peak = amplitude * 32767 / 1.75
    step = 2 * math.pi * fundamental_hz / rate
    voiced = array(
        "h",
        (
            int(
                peak
                * (
                    math.sin(i * step)
                    + 0.5 * math.sin(2 * i * step)
                    + 0.25 * math.sin(3 * i * step)
                )
            )
            for i in range(tone_ms * rate // 1000)
        ),
    )
    before = array("h", bytes(2 * (silence_before_ms * rate // 1000)))
    after = array("h", bytes(2 * (silence_after_ms * rate // 1000)))
    return encode_samples(before + voiced + after, fmt)
