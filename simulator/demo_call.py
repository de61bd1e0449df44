"""The demo's WebRTC call: an aiortc peer creates a call through the official SDK, the
application's sideband watches it, the caller speaks two turns and the application hangs up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.realtime import RealtimeSessionCreateRequestParam

from simulator.rtc_client import ONE_TURN, ClientPeer, until
from simulator.scenarios import GA_MODEL

#: The call's session, as a browser app's server would configure it: the caller is transcribed.
CALL_SESSION: RealtimeSessionCreateRequestParam = {
    "type": "realtime",
    "model": GA_MODEL,
    "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
}


@dataclass
class CallResult:
    """What the demo call did, as the peer and the application's sideband saw it."""

    call_id: str
    #: ``response.done`` events the sideband received (one per caller turn).
    responses: int
    #: Completed transcriptions of the caller's turns the sideband received.
    transcriptions: int
    #: 20 ms frames of the assistant's audio the peer heard that were not silence.
    voiced_frames: int
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"WebRTC call {self.call_id}: {self.responses} response(s), "
            f"{self.transcriptions} transcription(s), assistant audio heard "
            f"({self.voiced_frames} frames), hung up, {self.seconds:.1f} s"
        )


async def place_call(client: openai.AsyncOpenAI, timeout_s: float) -> CallResult:
    """Create a call with a fresh peer, watch it over ``client.realtime.connect(call_id=…)``,
    speak two turns (:data:`ONE_TURN` each) and hang up; raises what the SDK or the wait raised."""
    started = time.monotonic()
    peer, events = ClientPeer(), list[dict[str, Any]]()
    try:
        raw = await client.realtime.calls.with_raw_response.create(
            sdp=await peer.offer(), session=CALL_SESSION
        )
        call_id = raw.headers["location"].rsplit("/", 1)[1]  # the service names the call there
        async with client.realtime.connect(call_id=call_id) as sideband:
            reader = asyncio.create_task(_read(sideband, events))
            await peer.connect(raw.http_response.text)
            await until(lambda: peer.count("session.created") == 1, timeout_s)
            for turn in (1, 2):  # each after the answer before it: no barge-in, two answers
                peer.microphone.play(ONE_TURN)
                await until(_answered(events, turn), timeout_s)
            await client.realtime.calls.hangup(call_id)
            await asyncio.wait_for(reader, timeout_s)  # the sideband ends with the call
    finally:
        await peer.close()
    return CallResult(
        call_id=call_id,
        responses=_count(events, "response.done"),
        transcriptions=_count(events, "conversation.item.input_audio_transcription.completed"),
        voiced_frames=peer.voiced_chunks,
        seconds=time.monotonic() - started,
    )


async def _read(sideband: Any, into: list[dict[str, Any]]) -> None:
    async for event in sideband:
        into.append(event.model_dump())


def _answered(events: list[dict[str, Any]], turns: int) -> Callable[[], bool]:
    return lambda: _count(events, "response.done") >= turns


def _count(events: list[dict[str, Any]], event_type: str) -> int:
    return sum(1 for event in events if event.get("type") == event_type)
