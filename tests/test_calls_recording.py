"""Call-control requests through a real `rtrec proxy`: relayed byte for byte, recorded as calls.

The upstream is a local stand-in for OpenAI's call endpoints (`tests/support/call_upstream.py`);
the client is the official `openai` SDK, or raw HTTP where exact bytes matter.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from sqlalchemy import select

from protocol.redact import key_fingerprint
from storage.db import make_engine
from storage.models import Call, CallEvent, table
from tests.pgserver import PostgresServer
from tests.support.call_upstream import ANSWER_SDP, CLIENT_SECRET, CallUpstream, call_upstream
from tests.support.proxy import ProxyProcess, proxy_runner, stored_bytes

KEY = "sk-calls-never-stored-0123456789"
OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 7 2 IN IP4 192.0.2.44",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "c=IN IP4 192.0.2.44",
        "a=candidate:1 1 udp 2122260223 192.0.2.44 50000 typ host",
        "a=ice-ufrag:cliu",
        "a=ice-pwd:clientpasswordvalue123456",
        "a=mid:0",
        "a=sendrecv",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "",
    ]
)
SESSION: dict[str, Any] = {
    "type": "realtime",
    "model": "gpt-realtime-mini",
    "instructions": "be brief",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per run of this module: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('calls') / 'rtrec.db'}"
    return str(request.getfixturevalue("postgres").create_database())


def rows(db_url: str, model: type) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        t = table(model)
        found = [
            row._asdict()
            for row in connection.execute(select(t).order_by(t.c[next(iter(t.c.keys()))]))
        ]
    engine.dispose()
    return found


def client(proxy: ProxyProcess, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=proxy.base_url, max_retries=0)


def raw_post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {KEY}"}
    request = urllib.request.Request(url, body, headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return response.status, dict(response.headers.items()), response.read()


@pytest.fixture(scope="module")
def recorded(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Calls of every kind through one proxy (`--record text`), recorded once for this module."""
    with call_upstream() as upstream, proxy_runner(tmp_path_factory.mktemp("proxy")) as run:
        proxy = run(upstream.url, db_url, "--record", "text")
        sdk = client(proxy)
        # A WebRTC call with its session config (multipart), hung up.
        created = sdk.realtime.calls.with_raw_response.create(sdp=OFFER, session=SESSION)  # type: ignore[arg-type]
        webrtc = created.headers["location"].rsplit("/", 1)[1]
        sdk.realtime.calls.hangup(webrtc)
        # SIP calls: one accepted then referred, one rejected.
        sdk.realtime.calls.accept("rtc_sip_a", type="realtime", model="gpt-realtime")
        sdk.realtime.calls.refer("rtc_sip_a", target_uri="tel:+15550100")
        sdk.realtime.calls.reject("rtc_sip_r", status_code=486)
        # A browser's call with an ephemeral key its server minted through rtrec.
        secret = sdk.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime"}
        )
        browser = client(proxy, secret.value).realtime.calls.with_raw_response.create(sdp=OFFER)
        # The browser's call is the last one made: once it is counted, every call is.
        proxy.wait_for_metric('outcome="rejected"')
        text = proxy.wait_for_metric(
            'openai_realtime_calls_total{api="ga",outcome="answered",transport="webrtc"} 2.0'
        )
        yield {
            "proxy": proxy,
            "upstream": upstream,
            "webrtc": webrtc,
            "browser": browser.headers["location"].rsplit("/", 1)[1],
            "answer": created.content,
            "metrics": text,
        }


def wait_for_rows(db_url: str, model: type, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while len(found := rows(db_url, model)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_the_client_gets_the_upstreams_answer_unchanged(recorded):
    upstream: CallUpstream = recorded["upstream"]
    assert recorded["answer"] == ANSWER_SDP.encode() == upstream.replies[0]


def test_call_bodies_reach_the_upstream_byte_identical(recorded):
    upstream: CallUpstream = recorded["upstream"]
    proxy: ProxyProcess = recorded["proxy"]
    bodies = [
        (OFFER.encode(), "application/sdp", "/realtime/calls"),
        (
            b'{"type":"realtime","model":"gpt-realtime" }',
            "application/json",
            "/realtime/calls/rtc_b/accept",
        ),
        (b'{"status_code": 486}\n', "application/json", "/realtime/calls/rtc_b/reject"),
    ]
    for body, content_type, path in bodies:
        status, headers, reply = raw_post(proxy.base_url + path, body, content_type)
        seen = upstream.requests[-1]
        assert (seen.path, seen.body) == ("/v1" + path, body)
        assert seen.headers["content-type"] == content_type
        assert (status, reply) == (upstream.statuses[-1], upstream.replies[-1])
        assert headers.get("Location") == upstream.locations[-1]


def test_a_webrtc_call_is_recorded_with_its_config_and_lifecycle(recorded, db_url):
    calls = {row["id"]: row for row in wait_for_rows(db_url, Call, 4)}
    call = calls[recorded["webrtc"]]
    assert (call["api"], call["transport"], call["status"]) == ("ga", "webrtc", "ended")
    assert call["model"] == "gpt-realtime-mini"
    assert call["config"] == SESSION
    assert call["key_fingerprint"] == key_fingerprint(KEY)
    assert call["create_status"] == 201
    assert call["end_reason"] == "hung up"
    assert call["created_at"] <= call["ended_at"]
    assert call["audio_recorded"] is False  # no sideband: rtrec saw none of its audio
    events = [e["kind"] for e in wait_for_rows(db_url, CallEvent, 7) if e["call_id"] == call["id"]]
    assert events == ["created", "hung_up"]


def test_sdp_is_kept_as_media_metadata_without_addresses_or_credentials(recorded, db_url):
    call = next(r for r in wait_for_rows(db_url, Call, 4) if r["id"] == recorded["webrtc"])
    assert call["offer"] == {
        "media": [
            {
                "kind": "audio",
                "direction": "sendrecv",
                "codecs": ["audio/opus/48000/2", "audio/PCMU/8000/1"],
            }
        ]
    }
    assert call["answer"]["media"][0]["codecs"] == ["audio/opus/48000/2"]
    stored = json.dumps([call["offer"], call["answer"]])
    for secret in ("192.0.2.44", "198.51.100.9", "passwordvalue", "cliu", "candidate"):
        assert secret not in stored


def test_sip_calls_are_recorded_with_their_transport_and_end(recorded, db_url):
    calls = {row["id"]: row for row in wait_for_rows(db_url, Call, 4)}
    accepted, rejected = calls["rtc_sip_a"], calls["rtc_sip_r"]
    assert (accepted["transport"], accepted["model"], accepted["end_reason"]) == (
        "sip",
        "gpt-realtime",
        "referred",
    )
    assert accepted["answered_at"] is not None
    assert (rejected["transport"], rejected["status"], rejected["end_reason"]) == (
        "sip",
        "rejected",
        "rejected (486)",
    )
    events = wait_for_rows(db_url, CallEvent, 7)
    assert [e["kind"] for e in events if e["call_id"] == "rtc_sip_a"] == ["accepted", "referred"]
    referred = next(e for e in events if e["kind"] == "referred")
    assert referred["detail"]["target_uri"] == "tel:+15550100"


def test_a_browser_call_gets_the_model_of_its_client_secret(recorded, db_url):
    call = next(r for r in wait_for_rows(db_url, Call, 4) if r["id"] == recorded["browser"])
    assert call["model"] == "gpt-realtime"
    assert call["key_fingerprint"] == key_fingerprint(CLIENT_SECRET)


def test_calls_are_counted_by_api_transport_and_outcome(recorded):
    text = recorded["metrics"]
    sample = 'openai_realtime_calls_total{api="ga",outcome="%s",transport="%s"} %s'
    assert sample % ("answered", "webrtc", "2.0") in text
    assert sample % ("answered", "sip", "1.0") in text
    assert sample % ("rejected", "sip", "1.0") in text


def test_no_key_reaches_storage_or_logs(recorded, db_url, postgres: PostgresServer):
    proxy: ProxyProcess = recorded["proxy"]
    wait_for_rows(db_url, Call, 4)
    stored = stored_bytes(db_url, postgres)
    assert b"gpt-realtime-mini" in stored  # the scan sees what was recorded
    for secret in (KEY, CLIENT_SECRET, "clientpasswordvalue", "serverpasswordvalue"):
        assert secret.encode() not in stored
        assert secret not in proxy.log


def test_record_full_keeps_the_sdp_but_not_its_ice_password(db_url, tmp_path):
    with call_upstream() as upstream, proxy_runner(tmp_path) as run:
        upstream.next_call = 100  # call ids the module's other calls do not have
        proxy = run(upstream.url, db_url)
        created = client(proxy).realtime.calls.with_raw_response.create(sdp=OFFER)
        call_id = created.headers["location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 15
        while not (found := [r for r in rows(db_url, Call) if r["id"] == call_id]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    offer = found[0]["offer"]
    assert offer["media"][0]["codecs"] == ["audio/opus/48000/2", "audio/PCMU/8000/1"]
    assert offer["sdp"] == OFFER.replace("clientpasswordvalue123456", "[REDACTED]")
    assert "a=ice-pwd:[REDACTED]" in found[0]["answer"]["sdp"]


def test_a_failed_observer_attach_is_a_log_line_and_a_metric_and_the_call_goes_on(db_url, tmp_path):
    with (
        pytest.MonkeyPatch.context() as env,
        call_upstream() as upstream,
        proxy_runner(tmp_path) as run,
    ):
        env.setenv("RTREC_OBSERVER_API_KEY", "sk-observer-0123456789")
        proxy = run(upstream.url, db_url, "--observe-calls", "on")
        sdk = client(proxy)
        sdk.realtime.calls.accept("rtc_forbidden1", type="realtime", model="gpt-realtime")
        sdk.realtime.calls.accept("rtc_unknown1", type="realtime", model="gpt-realtime")
        sdk.live.sessions.accept("live_unknown1", session={"type": "live", "model": "gpt-live-1"})
        failures = 'openai_realtime_observer_attach_failures_total{reason="%s"} %d.0'
        proxy.wait_for_metric(failures % ("unauthorized", 1))
        text = proxy.wait_for_metric(failures % ("unknown_call", 2))
        sdk.realtime.calls.hangup("rtc_forbidden1")  # the calls themselves went on
        sdk.realtime.calls.hangup("rtc_unknown1")
        sdk.live.sessions.hangup("live_unknown1")
        assert upstream.statuses == [200] * 6
        assert sorted(upstream.upgrades) == [
            "/v1/live/sessions/live_unknown1/attach?graceful_close=true",
            "/v1/realtime?call_id=rtc_forbidden1",
            "/v1/realtime?call_id=rtc_unknown1",
        ]
        assert 'reason="refused"} 0.0' in text
        assert proxy.stop() == 0
    assert "observer could not attach to call rtc_forbidden1: unauthorized (HTTP 401)" in proxy.log
    assert "observer could not attach to call rtc_unknown1: unknown_call (HTTP 404)" in proxy.log
    assert "observer could not attach to call live_unknown1: unknown_call (HTTP 404)" in proxy.log
    assert "sk-observer-0123456789" not in proxy.log


def attach_failures(proxy: ProxyProcess, reason: str) -> float:
    found = re.search(
        rf'openai_realtime_observer_attach_failures_total{{reason="{reason}"}} (\S+)',
        proxy.metrics_text(),
    )
    return float(found[1]) if found else 0.0


def test_an_attach_the_service_fails_or_cuts_off_is_counted_and_tried_again(
    sqlite_db_url, tmp_path
):
    with (
        pytest.MonkeyPatch.context() as env,
        call_upstream() as upstream,
        proxy_runner(tmp_path) as run,
    ):
        env.setenv("RTREC_OBSERVER_API_KEY", "sk-observer-0123456789")
        proxy = run(upstream.url, sqlite_db_url, "--observe-calls", "on")
        sdk = client(proxy)
        sdk.realtime.calls.accept("rtc_broken1", type="realtime", model="gpt-realtime")
        sdk.realtime.calls.accept("rtc_cut1", type="realtime", model="gpt-realtime")
        deadline = time.monotonic() + 15
        # Neither is the key's or the call's fault: the observer tries again, counting each.
        while attach_failures(proxy, "refused") < 2 or attach_failures(proxy, "unreachable") < 2:
            assert time.monotonic() < deadline, proxy.metrics_text()
            time.sleep(0.1)
        assert attach_failures(proxy, "unauthorized") == attach_failures(proxy, "unknown_call") == 0
        sdk.realtime.calls.hangup("rtc_broken1")  # the calls themselves went on
        sdk.realtime.calls.hangup("rtc_cut1")
        assert upstream.statuses == [200, 200, 200, 200]
        assert upstream.upgrades.count("/v1/realtime?call_id=rtc_cut1") >= 2
