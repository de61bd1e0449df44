"""How fast simulated responses stream: as fast as possible (tests) or like the real service."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Pacing:
    """Delays between a response's events; the all-zero default streams as fast as possible.

    ``audio_speed`` is how many times faster than real time audio deltas go out: 1.5 spaces
    100 ms chunks 66.7 ms apart. ``extra_delay_s`` is added after every delta (audio chunk or
    text delta) on top of the rest, which lets tests slow a response just enough to interrupt it.
    """

    first_delta_s: float = 0.0
    text_delta_s: float = 0.0
    audio_speed: float = 0.0
    rate_limits_delay_s: float = 0.0
    extra_delay_s: float = 0.0

    @classmethod
    def realtime(cls) -> Pacing:
        """Roughly the real service: ~350 ms to the first delta, audio at 1.5x real time,
        text at 40 deltas a second, ``rate_limits.updated`` 40 ms after ``response.done``."""
        return cls(
            first_delta_s=0.35, text_delta_s=0.025, audio_speed=1.5, rate_limits_delay_s=0.04
        )

    def after_delta_s(self, audio_ms: float | None) -> float:
        """The pause after one step: an audio chunk of ``audio_ms``, or a text delta (``None``)."""
        if audio_ms is None:
            paced = self.text_delta_s
        else:
            paced = audio_ms / 1000 / self.audio_speed if self.audio_speed > 0 else 0.0
        return paced + self.extra_delay_s


async def pause(seconds: float, interrupt: asyncio.Event) -> None:
    """Sleep ``seconds`` but wake as soon as ``interrupt`` is set; always yields to the loop."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(interrupt.wait(), seconds)
