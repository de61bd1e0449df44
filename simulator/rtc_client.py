"""The caller's side of a WebRTC call: an aiortc peer like a browser's, which offers audio and the
``oai-events`` data channel, speaks scripted turns and counts the assistant's voiced audio."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from simulator.audio import tone_burst
from simulator.rtc_peer import OutboundAudio, consume_audio, restrict_ice_to_loopback

#: A caller turn: a held vowel the VAD hears as speech, then the silence that ends the turn.
ONE_TURN = tone_burst(100, 500, 900)
#: Two caller turns back to back (the second may barge in on the answer to the first).
TWO_TURNS = ONE_TURN * 2


class ClientPeer:
    """The browser's side of a call: speaks what it is given (:data:`TWO_TURNS`), counts the
    assistant's audio frames that are not silence, and keeps every event of ``oai-events``."""

    def __init__(self, codec: str | None = None) -> None:
        """``codec`` (``audio/PCMU``...) is the only one offered; all of aiortc's by default."""
        restrict_ice_to_loopback()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.microphone = OutboundAudio()
        transceiver = self.pc.addTransceiver(self.microphone)
        if codec is not None:
            codecs = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType == codec])
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: list[dict[str, Any]] = []
        self.voiced_chunks = 0
        self.channel.on("message", lambda m: self.events.append(json.loads(m)))
        self.pc.on("track", self._on_track)
        self._reader: asyncio.Task[None] | None = None

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.create_task(consume_audio(track, self._on_audio))

    async def _on_audio(self, pcm: bytes) -> None:
        if any(pcm):
            self.voiced_chunks += 1

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def connect(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    def count(self, event_type: str) -> int:
        return sum(1 for e in self.events if e.get("type") == event_type)

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()


async def until(condition: Callable[[], object], timeout: float = 15.0) -> None:
    """Wait until ``condition()`` holds, polling; raises :class:`TimeoutError` after
    ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)
