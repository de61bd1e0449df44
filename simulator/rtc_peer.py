"""The simulator's side of a WebRTC call: a real aiortc peer that answers the client's offer,
hands the caller's audio on as 24 kHz PCM16 and plays the assistant's audio back over RTP."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Awaitable, Callable

import aioice.ice
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

logger = logging.getLogger(__name__)

#: Engines speak 24 kHz mono PCM16 (the Realtime default, and GPT-Live's sideband format).
PCM_RATE = 24000
FRAME_MS = 20
_FRAME_SAMPLES = PCM_RATE * FRAME_MS // 1000

OnAudio = Callable[[bytes], Awaitable[None]]
OnChannel = Callable[[RTCDataChannel], None]


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"]


def restrict_ice_to_loopback() -> None:
    """Gather ICE candidates on 127.0.0.1 only: aioice skips loopback and binds every other
    interface, and the simulator must never listen beyond the machine."""
    aioice.ice.get_host_addresses = _loopback_addresses


class OutboundAudio(MediaStreamTrack):
    """The assistant's audio track: queued PCM in real time, silence when nothing is queued."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        #: Called when the last queued audio has been played out.
        self.on_drained: Callable[[], None] | None = None
        self._pending = bytearray()
        self._sent_frames = 0
        self._started_at: float | None = None
        #: Frames that carried queued (non-silent) audio, for tests and logs.
        self.audio_frames = 0

    def play(self, pcm: bytes) -> None:
        self._pending += pcm

    def clear(self) -> None:
        self._pending.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._started_at is None:
            self._started_at = time.monotonic()
        due = self._started_at + self._sent_frames * FRAME_MS / 1000
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        size = _FRAME_SAMPLES * 2
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        if chunk:
            self.audio_frames += 1
            if not self._pending and self.on_drained is not None:
                self.on_drained()
        frame = av.AudioFrame(format="s16", layout="mono", samples=_FRAME_SAMPLES)
        frame.planes[0].update(chunk.ljust(size, b"\0"))
        frame.sample_rate = PCM_RATE
        frame.pts = self._sent_frames * _FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, PCM_RATE)
        self._sent_frames += 1
        return frame


async def play_out(track: OutboundAudio) -> None:
    """Pull ``track`` in real time with no peer behind it (a SIP call's simulated phone line)."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def consume_audio(track: MediaStreamTrack, on_audio: OnAudio) -> None:
    """Decode ``track`` (Opus, PCMU...) to 24 kHz mono PCM16 for ``on_audio`` until it ends."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=PCM_RATE)
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, av.AudioFrame)
        for out in resampler.resample(frame):
            await on_audio(bytes(out.planes[0])[: out.samples * 2])


class RtcPeer:
    """One answered WebRTC call: the peer connection, its outbound track, the inbound reader."""

    def __init__(self, outbound: OutboundAudio, on_audio: OnAudio, on_channel: OnChannel) -> None:
        restrict_ice_to_loopback()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.outbound = outbound
        self._on_audio = on_audio
        self._reader: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", on_channel)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.create_task(consume_audio(track, self._on_audio))

    async def answer(self, offer_sdp: str) -> str:
        """Accept the client's offer and return the SDP answer (ICE gathered, no trickle)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        self.pc.addTrack(self.outbound)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
