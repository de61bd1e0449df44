"""WAV export from damaged or odd audio rows: bad rates skipped, long silences bounded, streamed."""

from __future__ import annotations

import io
import subprocess
import sys
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from analysis import export
from storage.models import AudioChunk, table
from storage.records import SessionOpened
from storage.writer import Writer

START = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def impossible_rate(db_url: str) -> int:
    """A rate no WAV header holds; PostgreSQL's INTEGER column stops at 2**31 - 1."""
    return 5_000_000_000 if db_url.startswith("sqlite") else 2**31 - 1


def chunk(at_s: float, data: bytes, rate: int = 24_000, audio_format: str = "pcm16"):
    ts = START + timedelta(seconds=at_s)
    return {"ts": ts, "audio_format": audio_format, "sample_rate": rate, "data": data}


def store_audio(engine: Engine, direction: str, chunks: list[dict[str, Any]]) -> None:
    """Rows as a damaged database might hold them, written past the recorder's own checks."""
    writer = Writer(engine)
    writer.start()
    writer.submit([SessionOpened("s-audio", START, "ga", "/v1/realtime", "full")])
    writer.close()
    rows = [
        {"session_id": "s-audio", "seq": seq, "direction": direction, **c}
        for seq, c in enumerate(chunks)
    ]
    with engine.begin() as connection:
        connection.execute(insert(table(AudioChunk)), rows)


def export_wav(db_url: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rtrec.cli", "export", "s-audio", "--format", "wav"]
    return subprocess.run(
        [*command, "-o", str(cwd / "out.wav"), "--db", db_url, *extra],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_a_chunk_at_an_impossible_rate_is_skipped_with_a_warning(
    engine: Engine, db_url: str, tmp_path: Path
):
    good = b"\x01\x00" * 24_000
    bad = impossible_rate(db_url)
    store_audio(engine, "client", [chunk(0, good), chunk(1, good, rate=bad)])
    result = export_wav(db_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"rtrec export: warning: skipped 1 audio chunk(s) in pcm16 at {bad} Hz",
        f"rtrec export: wrote 1.0s of audio to {tmp_path / 'out.wav'}",
    ]
    with wave.open(str(tmp_path / "out.wav")) as wav:
        assert (wav.getframerate(), wav.getnframes()) == (24_000, 24_000)


def test_the_export_says_where_it_wrote_the_file(engine: Engine, db_url: str, tmp_path: Path):
    store_audio(engine, "client", [chunk(0, b"\x01\x00" * 12_000)])
    command = [sys.executable, "-m", "rtrec.cli", "export", "s-audio", "--format", "wav"]
    result = subprocess.run(
        [*command, "--db", db_url], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "rtrec export: wrote 0.5s of audio to s-audio.wav\n"
    assert (tmp_path / "s-audio.wav").is_file()


def test_audio_only_at_impossible_rates_is_one_line(engine: Engine, db_url: str, tmp_path: Path):
    store_audio(engine, "server", [chunk(0, b"\x00\x00" * 100, rate=impossible_rate(db_url))])
    result = export_wav(db_url, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "rtrec export: no audio in a format the Realtime API or GPT-Live"
    )
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out.wav").exists()


def test_an_hour_of_nothing_becomes_a_bounded_silence():
    user = [chunk(0, b"\x01\x00" * 2400), chunk(3600, b"\x02\x00" * 2400)]
    assistant = [chunk(0.5, b"\x03\x00" * 2400)]
    plan = export.conversation_plan(user, assistant)
    assert plan.notes == [f"shortened 1 silence(s) longer than {export.MAX_GAP_S} s to 60 s"]
    # 0.5 s of the assistant's chunk, then at most MAX_GAP_S, then the user's second chunk.
    assert plan.frames == 12_000 + 2400 + export.MAX_GAP_S * 24_000 + 2400


def test_stereo_puts_each_side_on_its_channel_at_its_time():
    user = [chunk(0, b"\x01\x00" * 10)]
    assistant = [chunk(0.5, b"\x02\x00" * 10)]
    out = io.BytesIO()
    export.write_wav(out, export.conversation_plan(user, assistant))
    with wave.open(io.BytesIO(out.getvalue())) as wav:
        assert (wav.getnchannels(), wav.getnframes()) == (2, 12_010)
        frames = wav.readframes(wav.getnframes())
    left = frames[0::4] + frames[1::4]
    right = frames[2::4]
    assert frames[:4] == b"\x01\x00\x00\x00"  # user alone at the start
    assert right[12_000:12_010] == b"\x02" * 10
    assert left.count(b"\x01") == 10


def test_a_truncated_pcm16_chunk_does_not_shift_the_other_channel():
    user = [chunk(0, b"\x01\x00" * 10 + b"\x07")]  # an odd byte count: half a sample
    assistant = [chunk(0, b"\x02\x00" * 10)]
    plan = export.conversation_plan(user, assistant)
    data = b"".join(export.data_blocks(plan))
    assert data == b"\x01\x00\x02\x00" * 10


class WriteSizes(io.BytesIO):
    """A file that remembers the largest single write it was given (and keeps none of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.largest = max(self.largest, len(data))
        self.total += len(data)
        return len(data)


@pytest.mark.parametrize("sides", ["stereo", "mono"])
def test_the_wav_is_written_in_bounded_pieces(sides: str):
    second = b"\x01\x00" * 24_000
    user = [chunk(0, second), chunk(50, second)]  # 49 s of silence between them
    assistant = [chunk(1, second)] if sides == "stereo" else []
    plan = (
        export.conversation_plan(user, assistant)
        if assistant
        else export.side_plan(user * 30)  # 60 s of audio back to back
    )
    out = WriteSizes()
    export.write_wav(out, plan)
    assert out.total == len(plan.header()) + plan.data_bytes
    assert out.total > 2_000_000
    assert out.largest <= max(len(second), export.BLOCK_FRAMES * 4)


def test_gpt_live_pcm16_at_16_khz_exports_at_its_rate():
    plan = export.side_plan([chunk(0, b"\x01\x00" * 16_000, rate=16_000)])
    assert (plan.notes, plan.rate, plan.frames) == ([], 16_000, 16_000)
