"""GPT-Live's session logic without a socket: client events in, server events out."""

from __future__ import annotations

import json
from typing import Any

from simulator import LiveSession
from simulator.audio import tone_burst
from tests.support.live import validate_live_event
from tests.support.simulator import b64

JSON = dict[str, Any]
SECOND_OF_SILENCE = bytes(48_000)


class Transcript:
    """A LiveSession with a list for an outlet, as a data channel or sideband front end would."""

    def __init__(self) -> None:
        self.events: list[JSON] = []
        self.session = LiveSession(self.collect)

    async def collect(self, event: JSON) -> None:
        validate_live_event(event)
        self.events.append(event)

    async def send(self, **event: Any) -> None:
        await self.session.handle(json.dumps(event))

    async def append(self, audio: bytes) -> None:
        for at in range(0, len(audio), 4800):
            await self.send(type="session.input_audio.append", audio=b64(audio[at : at + 4800]))

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


async def test_a_session_runs_without_a_socket_from_start_to_close() -> None:
    live = Transcript()
    await live.send(type="session.start", session={"model": "gpt-live-1"})
    await live.append(tone_burst(200, 800, 600))
    await live.session.finish_turn()
    await live.send(type="session.close")

    assert live.types()[0] == "session.started"
    assert "session.output_audio.delta" in live.types()
    await live.send(type="session.input_audio.mute")  # crossed the close: unanswered

    assert live.types()[-1] == "session.closed"
    assert live.session.ended == (1000, "")


async def test_usage_is_cumulative_and_periodic_while_the_user_is_silent() -> None:
    live = Transcript()
    await live.send(type="session.start", session={"model": "gpt-live-1"})
    await live.append(SECOND_OF_SILENCE * 12)
    await live.send(type="session.close")

    updates = [e for e in live.events if e["type"] == "session.usage.updated"]
    seconds = [e["usage"]["seconds"] for e in updates]
    closed = live.events[-1]["usage"]
    assert seconds == [5.0, 10.0]
    assert all(0 <= e["context_window"]["usage_ratio"] <= 1 for e in updates)
    assert closed == {"seconds": 12.0, "active_seconds": 12, "paused_seconds": 0}
    assert "session.input_transcript.delta" not in live.types()


async def test_muted_input_starts_no_turn_and_unmuted_input_does() -> None:
    live = Transcript()
    await live.send(type="session.start", session={"model": "gpt-live-1"})
    await live.send(type="session.input_audio.mute")
    await live.append(tone_burst(200, 800, 600))
    await live.session.finish_turn()
    muted_types = live.types()
    await live.send(type="session.input_audio.unmute")
    await live.append(tone_burst(200, 800, 600))
    await live.session.finish_turn()

    assert "session.input_transcript.delta" not in muted_types
    assert "session.input_transcript.delta" in live.types()
