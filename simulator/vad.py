"""Server voice activity detection by frame energy, for ``turn_detection`` of either VAD type."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from simulator.audio import AudioFormat, bytes_per_ms, decode_samples

#: Analysis frame; VAD times are multiples of it.
FRAME_MS = 10
#: RMS level (dBFS) that ``threshold`` 0 and 1 map to; 0.5, the default, is -40 dBFS.
QUIETEST_DBFS = -70.0
LOUDEST_DBFS = -10.0
FULL_SCALE = 32768.0
#: ``semantic_vad`` has no timing knobs; its ``eagerness`` picks the silence that ends a turn.
EAGERNESS_SILENCE_MS = {"low": 1000, "medium": 500, "high": 250, "auto": 500}
DEFAULT_THRESHOLD = 0.5
DEFAULT_PREFIX_PADDING_MS = 300
DEFAULT_SILENCE_MS = 200


@dataclass(frozen=True)
class VadSettings:
    """The detector's view of a session's ``turn_detection``."""

    threshold: float = DEFAULT_THRESHOLD
    prefix_padding_ms: int = DEFAULT_PREFIX_PADDING_MS
    silence_duration_ms: int = DEFAULT_SILENCE_MS

    @classmethod
    def from_turn_detection(cls, turn_detection: dict[str, Any]) -> VadSettings:
        if turn_detection.get("type") == "semantic_vad":
            eagerness = str(turn_detection.get("eagerness") or "auto")
            return cls(silence_duration_ms=EAGERNESS_SILENCE_MS.get(eagerness, 500))
        return cls(
            threshold=_number(turn_detection.get("threshold"), DEFAULT_THRESHOLD),
            prefix_padding_ms=int(
                _number(turn_detection.get("prefix_padding_ms"), DEFAULT_PREFIX_PADDING_MS)
            ),
            silence_duration_ms=int(
                _number(turn_detection.get("silence_duration_ms"), DEFAULT_SILENCE_MS)
            ),
        )

    @property
    def min_rms(self) -> float:
        """The frame RMS (16-bit scale) that counts as speech.

        ``threshold`` (0..1) maps linearly onto a level in dBFS, from -70 dBFS at 0 (anything but
        near-digital silence is speech) to -10 dBFS at 1 (only shouting is), so the default 0.5
        asks for -40 dBFS: normal speech (-30..-15 dBFS) passes, room noise (-60 dBFS) does not.
        """
        level = min(1.0, max(0.0, self.threshold))
        dbfs = QUIETEST_DBFS + (LOUDEST_DBFS - QUIETEST_DBFS) * level
        return FULL_SCALE * 10 ** (dbfs / 20)


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


@dataclass(frozen=True)
class VadEvent:
    """Speech began (``start``) or ended (``stop``) at ``ms`` of the session's input audio."""

    kind: Literal["start", "stop"]
    ms: int


class EnergyVad:
    """Streams input audio through 10 ms frames and reports where speech starts and stops.

    A frame is speech when its RMS reaches :attr:`VadSettings.min_rms`. Speech starts at the first
    such frame and stops once ``silence_duration_ms`` of non-speech frames followed it; the stop is
    reported at the end of that silence. Padding is the caller's business: ``start`` is where the
    speech itself begins.
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._pending_ms = 0
        self._format: AudioFormat | None = None
        self.speaking = False
        self._silence_ms = 0

    def reset(self) -> None:
        """Forget partial frames and any speech in progress (VAD off, buffer cleared)."""
        self._pending.clear()
        self.speaking = False
        self._silence_ms = 0

    def feed(
        self, data: bytes, fmt: AudioFormat, start_ms: float, settings: VadSettings
    ) -> list[VadEvent]:
        """Analyse ``data`` (in ``fmt``), which begins at ``start_ms`` of the session's audio."""
        if fmt != self._format:
            self.reset()
            self._format = fmt
        if not self._pending:
            self._pending_ms = round(start_ms)
        self._pending += data
        frame_bytes = bytes_per_ms(fmt) * FRAME_MS
        min_power = settings.min_rms**2
        found: list[VadEvent] = []
        offset = 0
        while offset + frame_bytes <= len(self._pending):
            samples = decode_samples(bytes(self._pending[offset : offset + frame_bytes]), fmt)
            voiced = math.sumprod(samples, samples) >= min_power * len(samples)
            event = self._step(voiced, self._pending_ms, settings)
            if event is not None:
                found.append(event)
            offset += frame_bytes
            self._pending_ms += FRAME_MS
        del self._pending[:offset]
        return found

    def _step(self, voiced: bool, frame_ms: int, settings: VadSettings) -> VadEvent | None:
        if voiced:
            self._silence_ms = 0
            if not self.speaking:
                self.speaking = True
                return VadEvent("start", frame_ms)
            return None
        if not self.speaking:
            return None
        self._silence_ms += FRAME_MS
        if self._silence_ms >= max(FRAME_MS, settings.silence_duration_ms):
            self.speaking = False
            self._silence_ms = 0
            return VadEvent("stop", frame_ms + FRAME_MS)
        return None
