"""The client side of simulated calls: an aiortc browser peer and SDK clients of a CallServer."""

from __future__ import annotations

import asyncio
import http.server
import json
import queue
import threading
import urllib.request
from typing import Any

import openai
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from simulator.audio import tone_burst
from simulator.call_server import CallServer
from simulator.rtc_peer import OutboundAudio, consume_audio, restrict_ice_to_loopback

#: Two caller turns: a held vowel the VAD hears as speech, then the silence that ends the turn.
TWO_TURNS = tone_burst(100, 500, 900) * 2


def sdk_client(server: CallServer, api_key: str = "sk-test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=server.base_url + "/v1",
        websocket_base_url=server.base_url.replace("http", "ws", 1) + "/v1",
        max_retries=0,
    )


class ClientPeer:
    """The browser's side of a call: speaks :data:`TWO_TURNS`, counts the assistant's audio
    frames that are not silence, and keeps every event of the ``oai-events`` channel."""

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


async def until(condition: Any, timeout: float = 15.0) -> None:
    """Wait until ``condition()`` holds, polling; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def read_sideband(connection: Any, into: list[dict[str, Any]]) -> None:
    async for event in connection:
        into.append(event.model_dump())


class WebhookReceiver:
    """The application's webhook endpoint: a loopback HTTP server that keeps every POST."""

    def __init__(self) -> None:
        received = self.received = queue.Queue[tuple[bytes, dict[str, str]]]()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((body, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ring(server: CallServer, webhook_url: str, api: str = "realtime") -> dict[str, Any]:
    """Ring a simulated SIP call of ``api`` through the simulator's admin endpoint."""
    request = urllib.request.Request(
        server.base_url + "/simulator/sip/calls",
        json.dumps({"webhook_url": webhook_url, "api": api}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result
