"""The recorder addon inside mitmproxy's own test harness (`taddons`, `tflow`)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import orjson
import pytest
from mitmproxy import exceptions
from mitmproxy.http import Headers, HTTPFlow, Response
from mitmproxy.master import Master
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketData, WebSocketMessage
from sqlalchemy import select
from wsproto.frame_protocol import Opcode

from handover.options import CLI_OPTIONS
from proxy.addon import Relay
from proxy.master import ProxyConfig, configured_relay
from storage.db import make_engine
from storage.models import Event, RealtimeSession, SessionProperty, table
from tests.support.net import free_port

KEY = "sk-test-addon-0123456789abcdef"


def websocket_of(flow: HTTPFlow) -> WebSocketData:
    """The flow's WebSocket side: every flow here comes from `tflow.twebsocketflow`."""
    assert flow.websocket is not None
    return flow.websocket


def realtime_flow(path: str = "/v1/realtime?model=gpt-realtime") -> HTTPFlow:
    flow = tflow.twebsocketflow(messages=False)
    flow.request.path = path
    flow.request.headers["Authorization"] = f"Bearer {KEY}"
    websocket_of(flow).messages.clear()
    return flow


def send(
    recorder: Relay,
    flow: HTTPFlow,
    from_client: bool,
    content: bytes,
    opcode: Opcode = Opcode.TEXT,
) -> WebSocketMessage:
    message = WebSocketMessage(opcode, from_client, content)
    websocket_of(flow).messages.append(message)
    recorder.websocket_message(flow)
    return message


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def recorder_ctx(db_url: str, metrics_port: int):
    """The addon as `mitmdump -s` runs it: it starts its own recorder process."""
    recorder = Relay()
    with taddons.context(recorder) as tctx:
        tctx.configure(
            recorder, rtrec_db=db_url, rtrec_metrics_port=metrics_port, rtrec_flush_interval_ms=5
        )
        recorder.running()
        yield recorder, tctx
        recorder.done()


def scraped(port: int, name: str, labels: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name}{{{labels}}} "):
                return float(line.rpartition(" ")[2])
    return None


def rows(db_url: str, model: type) -> list:
    with make_engine(db_url).connect() as connection:
        return list(connection.execute(select(table(model))))


def test_messages_are_recorded_and_left_untouched(recorder_ctx, db_url: str):
    recorder, _ = recorder_ctx
    flow = realtime_flow()
    recorder.websocket_start(flow)
    first = b'{"type":"session.update","session":{"type":"realtime"}}'
    sent = send(recorder, flow, True, first)
    second = send(recorder, flow, False, b'{"type":"session.updated","event_id":"event_1"}')
    assert sent.content == first
    assert websocket_of(flow).messages == [second]  # trimmed to the newest message
    websocket_of(flow).close_code = 1000
    websocket_of(flow).closed_by_client = True
    recorder.websocket_end(flow)
    recorder.done()
    events = rows(db_url, Event)
    assert [(e.seq, e.direction, e.type) for e in events] == [
        (0, "client", "session.update"),
        (1, "server", "session.updated"),
    ]
    (session,) = rows(db_url, RealtimeSession)
    assert (session.model, session.api, session.close_code, session.closed_by) == (
        "gpt-realtime",
        "ga",
        1000,
        "client",
    )
    assert session.key_fingerprint is not None
    assert KEY not in repr(session)


def test_other_websockets_are_not_recorded(recorder_ctx, db_url: str):
    recorder, _ = recorder_ctx
    flow = realtime_flow("/socket.io/?x=1")
    recorder.websocket_start(flow)
    send(recorder, flow, True, b'{"type":"hello"}')
    send(recorder, flow, True, b'{"type":"hello again"}')
    assert len(websocket_of(flow).messages) == 2  # not ours: left alone
    recorder.done()
    assert rows(db_url, RealtimeSession) == []


def test_odd_frames_are_recorded(recorder_ctx, db_url: str):
    recorder, _ = recorder_ctx
    flow = realtime_flow()
    recorder.websocket_start(flow)
    send(recorder, flow, True, b"\x00\xffbinary", Opcode.BINARY)
    send(recorder, flow, True, b"{not json")
    send(recorder, flow, False, orjson.dumps({"type": "future.event", "x": "y" * 2_000_000}))
    recorder.done()
    events = rows(db_url, Event)
    assert [e.type for e in events] == ["binary", "invalid", "future.event"]
    assert events[1].payload == "{not json"
    assert events[2].size_bytes > 2_000_000


def test_beta_is_detected_from_the_subprotocol(recorder_ctx, db_url: str):
    recorder, _ = recorder_ctx
    flow = realtime_flow("/v1/realtime?model=gpt-4o-realtime-preview")
    flow.request.headers["Sec-WebSocket-Protocol"] = "realtime, openai-beta.realtime-v1"
    recorder.websocket_start(flow)
    recorder.done()
    (session,) = rows(db_url, RealtimeSession)
    assert session.api == "beta"


def test_refused_upgrade_is_counted_by_the_recorder_process(recorder_ctx, metrics_port: int):
    recorder, _ = recorder_ctx
    flow = realtime_flow()
    flow.response = Response.make(403, b"no", Headers())
    recorder.response(flow)
    deadline = time.monotonic() + 10
    name, labels = "openai_realtime_upgrade_failures_total", 'status="403"'
    while scraped(metrics_port, name, labels) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scraped(metrics_port, name, labels) == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("rtrec_queue_size", 0, "rtrec_queue_size: 0 must be at least 1"),
        ("rtrec_flush_interval_ms", 0, "rtrec_flush_interval_ms: 0 must be at least 1"),
        ("rtrec_metrics_port", 70000, r"rtrec_metrics_port: 70000 is not a port \(0-65535\)"),
        ("rtrec_retention_days", -1, "rtrec_retention_days: -1 must be 0 or more"),
        ("rtrec_metric_properties", "model", "rtrec_metric_properties: 'model' is already a label"),
        ("rtrec_db", "nosuchdriver://x", "database URL"),
        ("rtrec_db", "sqlite:////no/such/dir/x.db", "does not exist"),
        (
            "rtrec_pricing",
            "/no/such/pricing.toml",
            "rtrec_pricing: file '/no/such/pricing.toml' not found",
        ),
    ],
)
def test_bad_options_are_refused(recorder_ctx, option: str, value: object, message: str):
    recorder, tctx = recorder_ctx
    with pytest.raises(exceptions.OptionsError, match=message):
        tctx.configure(recorder, **{option: value})


def test_addon_loads_as_a_script():
    with taddons.context() as tctx:
        script = tctx.script("proxy/addon.py")
        assert [type(addon).__name__ for addon in script.addons] == ["Relay"]


def test_a_configured_relay_has_its_certificates_before_it_listens():
    # mitmproxy's TlsConfig otherwise loads them in its `running` hook, after the listen socket is
    # bound: a request arriving in between crashed the hook and stopped the whole proxy.
    defaults: dict[str, Any] = {option.dest: option.default for option in CLI_OPTIONS}
    config = ProxyConfig(**defaults)

    async def configured() -> Master:
        return configured_relay(config, "/run/recorder.sock")

    master = asyncio.run(configured())
    assert master.addons.get("tlsconfig").certstore is not None


def test_gpt_live_upgrades_are_recorded_as_live_without_a_model_and_untagged(
    recorder_ctx, db_url: str
):
    recorder, _ = recorder_ctx
    flow = realtime_flow("/v1/live/sessions?rtrec_customer=acme")
    flow.request.headers["Rtrec-Property-Team"] = "voice"
    recorder.request(flow)
    assert flow.request.path == "/v1/live/sessions"  # the upstream never sees the tags
    assert "Rtrec-Property-Team" not in flow.request.headers
    recorder.websocket_start(flow)
    send(recorder, flow, True, b'{"type":"session.start","session":{"model":"gpt-live-1"}}')
    recorder.done()
    (session,) = rows(db_url, RealtimeSession)
    assert (session.api, session.model, session.path) == ("live", "gpt-live-1", "/v1/live/sessions")
    with make_engine(db_url).connect() as connection:
        tags = connection.execute(select(table(SessionProperty))).all()
    assert {(t.name, t.value) for t in tags} == {("customer", "acme"), ("team", "voice")}
