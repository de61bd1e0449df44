"""Audio the tests send: 24 kHz mono pcm16, the Realtime API's default format."""

from __future__ import annotations

import math
import struct

SAMPLE_RATE = 24_000


def sine_pcm16(ms: int, freq: float = 440.0, amplitude: int = 8000) -> bytes:
    """`ms` of a sine tone, loud enough for the simulator's server VAD."""
    samples = SAMPLE_RATE * ms // 1000
    return struct.pack(
        f"<{samples}h",
        *(int(amplitude * math.sin(2 * math.pi * freq * i / SAMPLE_RATE)) for i in range(samples)),
    )
