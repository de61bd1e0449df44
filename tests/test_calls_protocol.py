"""protocol/calls.py: call-control paths, bodies, ids and SDP metadata, against the SDK's shapes."""

from __future__ import annotations

import contextlib
import json
import threading
import typing
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import openai
import pytest
from openai.types.live import ConnectServerEvent

from protocol import calls

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "c=IN IP4 203.0.113.7",
        "a=candidate:1 1 udp 2122260223 203.0.113.7 54400 typ host",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:secretpasswordvalue123456",
        "a=fingerprint:sha-256 " + ":".join(["AA", "BB", "CC", "DD", "EE", "FF", "00", "11"] * 4),
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 203.0.113.7",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:secretpasswordvalue123456",
        "a=setup:actpass",
        "a=mid:1",
        "a=sctp-port:5000",
        "",
    ]
)


@dataclass
class Sent:
    method: str
    path: str
    content_type: str
    body: bytes


class _Catcher(BaseHTTPRequestHandler):
    seen: ClassVar[list[Sent]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.seen.append(Sent("POST", self.path, self.headers.get("content-type", ""), body))
        reply = b"v=0\r\n"
        self.send_response(201)
        self.send_header("Location", "/v1/realtime/calls/rtc_abc")
        self.send_header("Content-Type", "application/sdp")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def catcher():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Catcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _sent(catcher, call) -> Sent:
    """The request the official SDK sends for `call(client)`, caught by a local server."""
    _Catcher.seen.clear()
    port = catcher.server_address[1]
    client = openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    # The catcher answers every request as a create; only the request matters here.
    with contextlib.suppress(openai.APIError):
        call(client)
    return _Catcher.seen[0]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/realtime/calls", calls.CallRequest("create", "ga", None, "/v1")),
        ("POST", "/v1/live/sessions", calls.CallRequest("create", "live", None, "/v1")),
        (
            "POST",
            "/v1/realtime/calls/rtc_1/accept",
            calls.CallRequest("accept", "ga", "rtc_1", "/v1"),
        ),
        (
            "POST",
            "/v1/realtime/calls/rtc_1/hangup?x=1",
            calls.CallRequest("hangup", "ga", "rtc_1", "/v1"),
        ),
        (
            "POST",
            "/v1/live/sessions/live_9/refer",
            calls.CallRequest("refer", "live", "live_9", "/v1"),
        ),
        (
            "POST",
            "/openai/v1/realtime/calls",
            calls.CallRequest("create", "ga", None, "/openai/v1"),
        ),
        ("POST", "/v1/realtime/client_secrets", calls.CallRequest("secret", "ga", None, "/v1")),
        ("GET", "/v1/live/sessions", None),
        ("GET", "/v1/realtime/calls", None),
        ("POST", "/v1/realtime/sessions", None),
        ("POST", "/v1/live/sessions/live_9/content", None),
    ],
)
def test_call_requests_are_recognised_by_method_and_path(method, path, expected):
    assert calls.call_request(method, path) == expected


def test_the_sdks_call_requests_are_recognised(catcher):
    create = _sent(catcher, lambda c: c.realtime.calls.create(sdp=OFFER))
    accept = _sent(
        catcher, lambda c: c.realtime.calls.accept("rtc_x", type="realtime", model="gpt-realtime")
    )
    reject = _sent(catcher, lambda c: c.realtime.calls.reject("rtc_x", status_code=486))
    refer = _sent(catcher, lambda c: c.realtime.calls.refer("rtc_x", target_uri="tel:+15550100"))
    hangup = _sent(catcher, lambda c: c.realtime.calls.hangup("rtc_x"))
    secret = _sent(catcher, lambda c: c.realtime.client_secrets.create())
    found = [
        calls.call_request(r.method, r.path)
        for r in (create, accept, reject, refer, hangup, secret)
    ]
    assert [(r.action, r.call_id) for r in found if r] == [
        ("create", None),
        ("accept", "rtc_x"),
        ("reject", "rtc_x"),
        ("refer", "rtc_x"),
        ("hangup", "rtc_x"),
        ("secret", None),
    ]
    body = calls.call_body(create.content_type, create.body)
    assert body.sdp == OFFER
    accepted = calls.call_body(accept.content_type, accept.body)
    assert calls.session_model(calls.accepted_session("ga", accepted.fields)) == "gpt-realtime"
    rejected = calls.call_body(reject.content_type, reject.body)
    assert calls.reject_status("ga", rejected.fields) == 486
    assert calls.refer_target(calls.call_body("application/json", refer.body).fields) == (
        "tel:+15550100"
    )


def test_a_multipart_create_gives_the_offer_and_the_session_config(catcher):
    request = _sent(
        catcher,
        lambda c: c.realtime.calls.create(
            sdp=OFFER, session={"type": "realtime", "model": "gpt-realtime-mini"}
        ),
    )
    assert request.content_type.startswith("multipart/form-data")
    body = calls.call_body(request.content_type, request.body)
    assert body.sdp == OFFER
    assert calls.session_model(body.session) == "gpt-realtime-mini"


def test_a_live_create_reads_the_session_and_the_reply_names_the_call():
    request = {"session": {"model": "gpt-live-1"}, "transport": {"type": "webrtc", "sdp": OFFER}}
    body = calls.call_body("application/json", json.dumps(request).encode())
    assert (body.sdp, calls.session_model(body.session)) == (OFFER, "gpt-live-1")
    reply = {"session": {"id": "live_42"}, "transport": {"type": "webrtc", "sdp": "v=0"}}
    assert calls.call_id_from_reply("live", reply) == "live_42"


def test_the_call_id_comes_from_the_location_header():
    assert calls.call_id_from_location("/v1/realtime/calls/rtc_u1") == "rtc_u1"
    assert calls.call_id_from_location("https://api.openai.com/v1/realtime/calls/rtc_u2") == (
        "rtc_u2"
    )
    assert calls.call_id_from_location(None) is None
    assert calls.call_id_from_location("/v1/realtime/other") is None


def test_sideband_paths_name_their_call_and_are_made_back():
    assert calls.sideband_call_id("/v1/realtime?call_id=rtc_7") == "rtc_7"
    assert calls.sideband_call_id("/v1/realtime?model=gpt-realtime") is None
    assert calls.sideband_call_id("/v1/live/sessions/live_3/attach") == "live_3"
    path = calls.sideband_path("/v1", "ga", "rtc_7")
    assert calls.sideband_call_id(path) == "rtc_7"
    assert calls.sideband_call_id(calls.sideband_path("/v1", "live", "live_3")) == "live_3"


def test_sdp_metadata_keeps_codecs_and_media_but_no_address_or_credential():
    summary = calls.sdp_summary(OFFER)
    assert summary == {
        "media": [
            {
                "kind": "audio",
                "direction": "sendrecv",
                "codecs": ["audio/opus/48000/2", "audio/PCMU/8000/1"],
            },
            {"kind": "application", "direction": None, "data_channel": True},
        ]
    }
    text = json.dumps(summary)
    for secret in ("203.0.113.7", "secretpassword", "AA:BB", "abcd", "candidate"):
        assert secret not in text


def test_a_body_that_is_not_sdp_gives_no_metadata():
    assert calls.sdp_summary("this is not an SDP") is None
    assert calls.call_body("application/json", b"{not json").fields is None


def test_only_a_gpt_live_sideband_carries_the_calls_audio():
    """The SDK's sideband union holds GPT-Live's two audio events; a Realtime sideband is the
    plain Realtime event stream, whose audio deltas a WebRTC call sends on its media line."""
    sideband_events = set(typing.get_args(typing.get_args(ConnectServerEvent)[0]))
    names = {event.model_fields["type"].annotation.__args__[0] for event in sideband_events}
    assert {"session.input_audio.append", "session.output_audio.delta"} <= names
    assert calls.sideband_carries_audio(calls.LIVE)
    assert not calls.sideband_carries_audio(calls.GA)
