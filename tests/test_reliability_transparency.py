"""Any frame, however odd, crosses the proxy unchanged and leaves exactly one event row."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import sqlite3
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from mitmproxy.http import HTTPFlow
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketData, WebSocketMessage
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from wsproto.frame_protocol import Opcode

import protocol
from proxy import addon
from simulator.server import FakeRealtimeServer, run_in_thread
from storage.db import make_engine
from storage.models import Event, RealtimeSession, table
from tests.support.frames import frames, nested_frame, shallow_payloads, spec_type, text_payloads
from tests.support.net import free_port
from tests.support.proxy import ProxyProcess, proxy_runner

KEY = "sk-transparency-key-0123456789"
# Frames holding values that some database cannot store as they are (kept as text or NULL, the
# event row still written: docs/schema.md#rules-every-write-follows). Checked on every run, not
# only when generated.
HARD_TO_STORE = [
    b'{"type":"x","s":"\\ud800 lone surrogate"}',
    b'{"type":"\\udc00"}',
    b'{"type":"x","n":NaN,"m":-Infinity}',
    b'{"type":"x","nul":"a\\u0000b","big":123456789012345678901234567890}',
    ('{"type":"' + "t" * 300 + '","event_id":"' + "e" * 300 + '"}').encode(),
    nested_frame(1200, "dict-event-nul"),
]


# --------------------------------------------------------------------------- database


def session_rows(db_url: str, path_marker: str) -> tuple[Any, list[Any]]:
    """The session whose path holds `path_marker`, and its events in `seq` order."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            sessions, events_table = table(RealtimeSession), table(Event)
            session = connection.execute(
                select(sessions).where(sessions.c.path.contains(path_marker))
            ).one_or_none()
            if session is None:
                return None, []
            rows = connection.execute(
                select(events_table)
                .where(events_table.c.session_id == session.id)
                .order_by(events_table.c.seq)
            ).all()
    finally:
        engine.dispose()
    return session, list(rows)


def closed_session(db_url: str, path_marker: str) -> tuple[Any, list[Any]]:
    """Wait until the session's close is committed: every event queued before it is too."""
    deadline = time.monotonic() + 20  # a hang guard, not a timing assertion
    while True:
        session, rows = session_rows(db_url, path_marker)
        if session is not None and session.ended_at is not None:
            return session, rows
        assert time.monotonic() < deadline, f"session {path_marker} never closed in the DB"
        time.sleep(0.02)


def stored_as(stored: str, event_type: str) -> bool:
    """Whether a stored `type` is the event's; one no database can hold as it is (NUL, a lone
    surrogate, too long for its column) may be kept as text in some other form
    (docs/schema.md#rules-every-write-follows)."""
    holdable = len(event_type) <= 200 and "\x00" not in event_type
    try:
        event_type.encode()
    except UnicodeEncodeError:
        holdable = False
    return stored == event_type if holdable else isinstance(stored, str) and stored != ""


def wire_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


# --------------------------------------------------------------------------- (a) in mitmproxy


def websocket_of(flow: HTTPFlow) -> WebSocketData:
    """The flow's WebSocket side: every flow here comes from `tflow.twebsocketflow`."""
    assert flow.websocket is not None
    return flow.websocket


def realtime_flow(marker: str) -> HTTPFlow:
    flow = tflow.twebsocketflow(messages=False)
    flow.request.path = f"/v1/realtime?model=gpt-realtime&trial={marker}"
    flow.request.headers["Authorization"] = f"Bearer {KEY}"
    websocket_of(flow).messages.clear()
    return flow


def counter_sums(metrics_port: int) -> dict[str, float]:
    """Every counter the recorder process serves, summed over its label sets."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        family.name: sum(s.value for s in family.samples if s.name == f"{family.name}_total")
        for family in text_string_to_metric_families(text)
        if family.type == "counter"
    }


def settled_counters(metrics_port: int, relayed: int) -> dict[str, float]:
    """The counters once the recorder process has counted `relayed` events (or 30 s passed)."""
    deadline = time.monotonic() + 30
    counters = counter_sums(metrics_port)
    while counters.get("openai_realtime_events", 0) < relayed and time.monotonic() < deadline:
        time.sleep(0.05)
        counters = counter_sums(metrics_port)
    return counters


def test_addon_hooks_never_raise_and_queue_one_event_per_message(db_url: str):
    recorder = addon.Relay()
    metrics_port = free_port()
    sent: dict[str, list[tuple[bool, bytes, bool]]] = {}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @example(
        messages=[(n % 2 == 0, (frame, True)) for n, frame in enumerate(HARD_TO_STORE)],
        record_mode="full",
        close_code=1000,
    )
    @given(
        messages=st.lists(st.tuples(st.booleans(), frames), max_size=6),
        record_mode=st.sampled_from(["full", "text", "metadata"]),
        close_code=st.sampled_from([1000, 1006, 1007, 1011, 3000, 4999]),
    )
    def one_session(messages: list[tuple[bool, tuple[bytes, bool]]], record_mode, close_code):
        tctx.options.update(rtrec_record=record_mode)
        marker = uuid.uuid4().hex
        flow = realtime_flow(marker)
        recorder.websocket_start(flow)
        for from_client, (content, is_text) in messages:
            message = WebSocketMessage(
                Opcode.TEXT if is_text else Opcode.BINARY, from_client, content
            )
            websocket_of(flow).messages.append(message)
            recorder.websocket_message(flow)
            assert websocket_of(flow).messages == [message]
            assert (message.content, message.dropped) == (content, False)  # relayed as is
        websocket_of(flow).close_code = close_code
        websocket_of(flow).close_reason = f"bye {KEY}"
        websocket_of(flow).closed_by_client = close_code % 2 == 0
        recorder.websocket_end(flow)
        sent[marker] = [(c, content, t) for c, (content, t) in messages]

    with taddons.context(recorder) as tctx:
        tctx.configure(
            recorder, rtrec_db=db_url, rtrec_metrics_port=metrics_port, rtrec_flush_interval_ms=5
        )
        recorder.running()  # starts the recorder process, which counts what the hooks hand over
        one_session()
        relayed = sum(map(len, sent.values()))
        counters = settled_counters(metrics_port, relayed)
        recorder.done()

    assert counters["openai_realtime_events"] == relayed
    assert counters.get("openai_realtime_recorder_parse_errors", 0) == 0
    assert counters.get("openai_realtime_recorder_dropped_events", 0) == 0
    for marker, messages in sent.items():
        session, rows = session_rows(db_url, marker)
        assert session is not None
        assert session.ended_at is not None
        assert KEY not in (session.close_reason or "")
        assert [(r.seq, r.direction, r.size_bytes) for r in rows] == [
            (seq, "client" if c else "server", len(content))
            for seq, (c, content, t) in enumerate(messages)
        ]
        for row, (_, content, is_text) in zip(rows, messages, strict=True):
            assert stored_as(row.type, spec_type(content, is_text))


# --------------------------------------------------------------------------- (b) end to end


@dataclass(frozen=True)
class Wire:
    """One message: what the receiving side must get, and how the client puts it on the wire."""

    data: str | bytes
    fragments: tuple[str | bytes, ...] = ()
    text: bool | None = None  # bytes fragments sent as one text message

    async def send(self, ws: ClientConnection) -> None:
        if self.fragments:
            await ws.send(list(self.fragments), text=self.text)
        else:
            await ws.send(self.data)


def _cut(data: Any, cuts: list[int]) -> tuple[Any, ...]:
    points = sorted({min(c, len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return tuple(data[a:b] for a, b in itertools.pairwise(bounds))


def _as_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# The fake service parses what clients send with the stdlib, which gives up on deep nesting:
# deep frames go from the server side only (the proxy treats both directions alike).
client_texts = shallow_payloads.map(_as_text)
server_texts = text_payloads.map(_as_text)
binaries_on_wire = st.binary(max_size=256) | text_payloads
cuts = st.lists(st.integers(0, 64), min_size=1, max_size=4)
client_wires = st.one_of(
    client_texts.map(Wire),
    binaries_on_wire.map(Wire),
    st.builds(lambda text, at: Wire(text, _cut(text, at)), client_texts, cuts),
    # Fragments cut inside a UTF-8 sequence: only the whole message has to be valid UTF-8.
    st.builds(
        lambda text, at: Wire(text, _cut(text.encode(), at), text=True),
        st.text(alphabet="aé€😀\x00", max_size=40),
        cuts,
    ),
    st.builds(lambda data, at: Wire(data, _cut(data, at)), binaries_on_wire, cuts),
)
server_wires = server_texts.map(Wire) | binaries_on_wire.map(Wire)
scripts = st.lists(
    st.tuples(st.just("client"), client_wires) | st.tuples(st.just("server"), server_wires),
    min_size=1,
    max_size=10,
)


@dataclass
class Relay:
    server: FakeRealtimeServer
    proxy: ProxyProcess
    db_url: str

    def url(self, marker: str) -> str:
        return f"ws://127.0.0.1:{self.proxy.port}/v1/realtime?model=gpt-realtime&trial={marker}"

    def conn_id(self, marker: str) -> int:
        return next(h.conn_id for h in self.server.handshakes if marker in h.path)

    async def on_server(self, call: Callable[[], Any]) -> Any:
        """Run a fake-server coroutine on its own loop without blocking this one."""
        return await asyncio.to_thread(lambda: self.server.call_threadsafe(call(), timeout=60))


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """One fake service and one real `rtrec proxy` shared by this module's examples."""
    directory: Path = tmp_path_factory.mktemp("relay")
    db_url = f"sqlite:///{directory / 'relay.db'}"
    with run_in_thread() as server, proxy_runner(directory) as run:
        yield Relay(server, run(server.base_url, db_url), db_url)


async def _collect(ws: ClientConnection, received: list[str | bytes]) -> None:
    try:
        async for message in ws:
            received.append(message)
    except ConnectionClosed:
        pass


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20  # a hang guard, not a timing assertion
    while not condition():
        assert time.monotonic() < deadline, "the other side never got everything"
        await asyncio.sleep(0.01)


async def exchange(relay: Relay, marker: str, script: list[tuple[str, Wire]], compression):
    """Play `script`, then close from the server; returns what the client received."""
    received: list[str | bytes] = []
    async with connect(
        relay.url(marker),
        additional_headers={"Authorization": f"Bearer {KEY}"},
        compression=compression,
        max_size=None,
    ) as ws:
        received.append(await ws.recv())  # session.created
        conn_id = relay.conn_id(marker)
        collector = asyncio.create_task(_collect(ws, received))
        client_sent = 0
        for side, wire in script:
            if side == "client":
                await wire.send(ws)
                client_sent += 1
            else:
                await relay.on_server(functools.partial(relay.server.send_raw, conn_id, wire.data))
        await _until(lambda: len(relay.server.messages(conn_id, "client")) == client_sent)
        await relay.on_server(lambda: relay.server.close_connection(conn_id, 1000, "done"))
        await asyncio.wait_for(collector, 30)
    return received


# No shrinking: each example is a real session, and a failing one is printed as found.
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@example(
    # The fake service chokes on lone surrogates and deep nesting from clients (it answers
    # with an error that quotes them): those go from its side only.
    script=[("client", Wire(f.decode())) for f in HARD_TO_STORE[2:-1]]
    + [("server", Wire(f.decode())) for f in HARD_TO_STORE],
    compression="deflate",
)
@given(script=scripts, compression=st.sampled_from([None, "deflate"]))
def test_every_message_arrives_byte_identical_and_has_its_event_row(
    relay: Relay, script: list[tuple[str, Wire]], compression: str | None
):
    marker = uuid.uuid4().hex
    received = asyncio.run(exchange(relay, marker, script, compression))
    conn_id = relay.conn_id(marker)
    from_client = [m.data for m in relay.server.messages(conn_id, "client")]
    from_server = [m.data for m in relay.server.messages(conn_id, "server")]
    assert from_client == [wire.data for side, wire in script if side == "client"]
    assert received == from_server

    session, rows = closed_session(relay.db_url, marker)
    assert (session.close_code, session.closed_by) == (1000, "server")
    for direction, logged in (("client", from_client), ("server", from_server)):
        recorded = [r for r in rows if r.direction == direction]
        assert [r.size_bytes for r in recorded] == [len(wire_bytes(m)) for m in logged]
        for row, message in zip(recorded, logged, strict=True):
            assert stored_as(row.type, spec_type(wire_bytes(message), isinstance(message, str)))
    assert [r.seq for r in rows] == list(range(len(rows)))


def test_a_16_mb_message_crosses_both_ways_compressed_and_is_recorded(relay: Relay):
    marker = uuid.uuid4().hex
    big_client = json.dumps({"type": "big.client", "blob": "c" * 16_000_000})
    big_server = json.dumps({"type": "big.server", "blob": "s\u0000" * 8_000_000})
    script = [("client", Wire(big_client)), ("server", Wire(big_server))]
    received = asyncio.run(exchange(relay, marker, script, "deflate"))
    conn_id = relay.conn_id(marker)
    assert [m.data for m in relay.server.messages(conn_id, "client")] == [big_client]
    assert big_server in received
    assert received == [m.data for m in relay.server.messages(conn_id, "server")]
    _, rows = closed_session(relay.db_url, marker)
    sizes = {r.type: r.size_bytes for r in rows}
    assert sizes["big.client"] == len(big_client.encode())
    assert sizes["big.server"] == len(big_server.encode())


@pytest.mark.parametrize(
    ("fragments", "what"),
    [
        ((b"\xff\xfe",), "an invalid byte"),
        # Broken in the last fragment: a client still sending after the proxy's close would be
        # reset by the proxy's kernel and might never read the 1007.
        ((b'{"type":"x","v":"', b'\xc3\x28"}'), "a broken sequence in a later fragment"),
        ((b'{"type":"x","v":"\xe2\x82',), "a sequence cut off at the end"),
    ],
)
def test_a_text_frame_with_invalid_utf8_ends_the_connection_with_1007(
    relay: Relay, fragments: tuple[bytes, ...], what: str
):
    marker = uuid.uuid4().hex

    async def session() -> tuple[list[str | bytes], int | None]:
        received: list[str | bytes] = []
        async with connect(relay.url(marker), additional_headers={"api-key": KEY}) as ws:
            received.append(await ws.recv())
            await ws.send('{"type":"before.the.bad.frame"}')
            received.append(await ws.recv())  # the fake service's error about that type
            # websockets checks str, not bytes: these go out as text frames exactly as given.
            await ws.send(list(fragments) if len(fragments) > 1 else fragments[0], text=True)
            await _collect(ws, received)
            return received, ws.close_code

    received, client_close = asyncio.run(session())
    conn_id = relay.conn_id(marker)
    server_close = asyncio.run(relay.on_server(lambda: relay.server.wait_closed(conn_id, 30)))
    assert client_close == 1007, what
    assert server_close[0] == 1007, what
    logged = [m.data for m in relay.server.messages(conn_id, "client")]
    assert logged[0] == '{"type":"before.the.bad.frame"}'
    session_row, rows = closed_session(relay.db_url, marker)
    # rtrec's raw relay passes the frame on unchanged: the service refuses it with 1007 (as
    # OpenAI's would), and that close reaches the client. The frame crossed the wire, so it is
    # recorded, as an invalid event; the service never saw a message.
    assert (session_row.close_code, session_row.closed_by) == (1007, "server")
    client_rows = [r.type for r in rows if r.direction == "client"]
    assert client_rows == ["before.the.bad.frame", protocol.INVALID]
    assert len(received) == len(relay.server.messages(conn_id, "server"))


def test_other_processes_opening_and_closing_the_database_lose_nothing(relay: Relay):
    """What a dashboard or `rtrec sessions` does while the proxy records: the next commits must
    still land in the database file (SQLite must not drop the WAL under the proxy's feet)."""
    database = relay.db_url.removeprefix("sqlite:///")
    for _ in range(3):
        sqlite3.connect(database).execute("SELECT count(*) FROM events").connection.close()
        marker = uuid.uuid4().hex
        asyncio.run(exchange(relay, marker, [("server", Wire('{"type":"after.a.reader"}'))], None))
        _, rows = closed_session(relay.db_url, marker)
        assert [r.type for r in rows] == ["session.created", "after.a.reader"]
