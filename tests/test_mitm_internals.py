"""What proxy/mitm_internals.py relies on in mitmproxy, and that it gives up quietly without it."""

from __future__ import annotations

import asyncio
from collections import deque

from mitmproxy import http
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.connection import ConnectionState
from mitmproxy.options import Options
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import http as http_layers
from mitmproxy.proxy.layers import websocket
from mitmproxy.proxy.layers.http._events import ErrorCode
from mitmproxy.proxy.layers.websocket import WebsocketLayer
from mitmproxy.test import taddons, tflow
from wsproto.connection import Connection, ConnectionType

from proxy import mitm_internals
from proxy.raw_relay import RawRelayLayer


def test_the_mitmproxy_internals_it_uses_are_still_there():
    # End to end, tests/test_proxy_edges.py (JSON 502) and tests/test_recorder_process.py
    # (close 1001 on Ctrl-C) prove the behaviour; this names the parts when an upgrade breaks it.
    assert ErrorCode.KILL.http_status_code() is None  # a flow killed in `error` gets no page
    assert callable(WebsocketLayer.relay_messages)
    assert isinstance(Connection(ConnectionType.SERVER)._events, deque)
    with taddons.context(Proxyserver()) as tctx:
        proxyserver = tctx.master.addons.get("proxyserver")
        assert proxyserver.connections == {}
        assert callable(proxyserver.inject_event)


def test_closing_gives_up_without_the_internals_it_expects():
    class Changed:
        """A proxyserver whose connections are no longer where rtrec looks."""

    assert mitm_internals.close_websockets(Changed(), 1001, "proxy shut down") == []
    assert asyncio.run(mitm_internals.close_websockets_and_wait(Changed(), 1001, "", 1.0)) == 0


def test_the_json_answer_gives_up_for_a_flow_without_a_live_connection():
    flow = tflow.tflow()
    flow.client_conn.state = ConnectionState.OPEN  # but not among the proxy's connections
    with taddons.context(Proxyserver()) as tctx:
        proxyserver = tctx.master.addons.get("proxyserver")
        sent = mitm_internals.answer_failed_connect(proxyserver, flow, http.Response.make(502))
    assert sent is False
    assert flow.killable  # untouched: mitmproxy sends its own page


def test_the_json_answer_is_not_written_under_tls():
    flow = tflow.tflow()
    flow.client_conn.tls = True  # plain bytes on the socket would break the TLS stream
    sent = mitm_internals.answer_failed_connect(Proxyserver(), flow, http.Response.make(502))
    assert sent is False
    assert flow.killable


def test_the_json_answer_is_not_written_to_a_client_mitmproxy_closed():
    flow = tflow.tflow()
    flow.client_conn.state = ConnectionState.CLOSED
    sent = mitm_internals.answer_failed_connect(Proxyserver(), flow, http.Response.make(502))
    assert sent is False
    assert flow.killable


def test_the_json_answer_gives_up_when_mitmproxy_changed():
    class Changed:
        """A proxyserver whose connections are something else now."""

        connections = None

    flow = tflow.tflow()
    flow.client_conn.state = ConnectionState.OPEN
    sent = mitm_internals.answer_failed_connect(Changed(), flow, http.Response.make(502))
    assert sent is False
    assert flow.killable


class _Sink:
    def raw_received(self, flow, from_client, chunk, frames):
        raise AssertionError("not relaying in this test")


def test_the_http_layer_builds_the_raw_relay_for_marked_flows_only():
    flow = tflow.twebsocketflow()
    context = Context(flow.client_conn, Options())
    try:
        assert mitm_internals.use_raw_relay(_Sink())
        built = vars(http_layers)["websocket"]  # what the HTTP layer builds after a 101
        assert isinstance(built.WebsocketLayer(context, flow), WebsocketLayer)
        flow.metadata[mitm_internals.RAW_RELAY_KEY] = True
        assert isinstance(built.WebsocketLayer(context, flow), RawRelayLayer)
    finally:
        mitm_internals.stop_raw_relay()
    assert vars(http_layers)["websocket"] is websocket


def test_the_raw_relay_is_not_used_when_mitmproxy_builds_its_layer_elsewhere(monkeypatch):
    def flow_done(self):  # a mitmproxy that no longer says `websocket.WebsocketLayer(...)`
        yield from ()

    monkeypatch.setattr(http_layers.HttpStream, "flow_done", flow_done)
    assert mitm_internals.use_raw_relay(_Sink()) is False
    assert vars(http_layers)["websocket"] is websocket
