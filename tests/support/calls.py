"""The client side of simulated calls: SDK clients of a CallServer, a webhook receiver, a SIP
ring; the aiortc browser peer lives in :mod:`simulator.rtc_client` (the demo uses it too)."""

from __future__ import annotations

import http.server
import json
import queue
import threading
import urllib.request
from typing import Any

import openai

from simulator.call_server import CallServer
from simulator.rtc_client import TWO_TURNS, ClientPeer, until

# The peer itself is product code now (`rtrec demo` places a call with it); tests import it here.
__all__ = [
    "TWO_TURNS",
    "ClientPeer",
    "WebhookReceiver",
    "read_sideband",
    "ring",
    "sdk_client",
    "until",
]


def sdk_client(server: CallServer, api_key: str = "sk-test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=server.base_url + "/v1",
        websocket_base_url=server.base_url.replace("http", "ws", 1) + "/v1",
        max_retries=0,
    )


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
