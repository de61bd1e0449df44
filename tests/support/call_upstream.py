"""A local stand-in for OpenAI's call-control endpoints (no media): it keeps every request it
got, byte for byte, and answers as the API does (201 + SDP + Location, empty 200s, secrets)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER_SDP = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 198.51.100.9",
        "s=-",
        "t=0 0",
        "m=audio 3478 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 198.51.100.9",
        "a=candidate:9 1 udp 2122260223 198.51.100.9 3478 typ host",
        "a=ice-ufrag:srvu",
        "a=ice-pwd:serverpasswordvalue987654",
        "a=mid:0",
        "a=sendrecv",
        "a=rtpmap:111 opus/48000/2",
        "",
    ]
)
CLIENT_SECRET = "ek_minted0123456789abcdef"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallUpstream:
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)  # every response's bytes, as sent
    statuses: list[int] = field(default_factory=list)
    locations: list[str | None] = field(default_factory=list)
    upgrades: list[str] = field(default_factory=list)  # sideband paths asked for
    next_call: int = 0
    refuse_status: int | None = None  # answer every request with this status instead

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(
        self, handler: BaseHTTPRequestHandler, seen: Seen
    ) -> tuple[int, dict[str, str], bytes]:
        if self.refuse_status is not None:
            body = json.dumps({"error": {"message": "no", "type": "invalid_request_error"}})
            return self.refuse_status, {"Content-Type": "application/json"}, body.encode()
        route = seen.path.partition("?")[0]
        if route.endswith("/realtime/calls"):
            self.next_call += 1
            headers = {
                "Content-Type": "application/sdp",
                "Location": f"/v1/realtime/calls/rtc_stub{self.next_call}",
            }
            return 201, headers, ANSWER_SDP.encode()
        if route.endswith("/realtime/client_secrets"):
            request = json.loads(seen.body or b"{}")
            secret = {
                "value": CLIENT_SECRET,
                "expires_at": 2000000000,
                "session": request.get("session"),
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(secret).encode()
        return 200, {}, b""


@contextmanager
def call_upstream() -> Iterator[CallUpstream]:
    upstream = CallUpstream()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = Seen("POST", self.path, headers, body)
            upstream.requests.append(seen)
            status, reply_headers, reply = upstream.reply(self, seen)
            upstream.replies.append(reply)
            upstream.statuses.append(status)
            upstream.locations.append(reply_headers.get("Location"))
            self.send_response(status)
            for name, value in reply_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_GET(self) -> None:
            """A sideband upgrade: this stand-in has none to give, it refuses as OpenAI does a
            key it does not take (401, for `rtc_forbidden…`) or a call it does not know (404);
            it fails (500) for `rtc_broken…` and hangs up without an answer for `rtc_cut…`."""
            upstream.upgrades.append(self.path)
            if "call_id=rtc_cut" in self.path:
                self.close_connection = True
                return
            forbidden = ("call_id=rtc_forbidden", "/live/sessions/live_forbidden")
            status = 401 if any(shape in self.path for shape in forbidden) else 404
            status = 500 if "call_id=rtc_broken" in self.path else status
            body = json.dumps({"error": {"message": "no", "type": "invalid_request_error"}})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    upstream.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
