"""The uncommitted input audio of one connection and the server VAD's turn state."""

from __future__ import annotations

from simulator.audio import AudioFormat, audio_ms, bytes_per_ms, bytes_per_sample
from simulator.vad import EnergyVad


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
        sample = bytes_per_sample(fmt)
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
