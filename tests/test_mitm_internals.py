"""What proxy/mitm_internals.py relies on in mitmproxy, and that it gives up quietly without it."""

from __future__ import annotations

import asyncio
from collections import deque

from mitmproxy import http
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.connection import ConnectionState
from mitmproxy.proxy.layers.http._events import ErrorCode
from mitmproxy.proxy.layers.websocket import WebsocketLayer
from mitmproxy.test import taddons, tflow
from wsproto.connection import Connection, ConnectionType

from proxy import mitm_internals


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
