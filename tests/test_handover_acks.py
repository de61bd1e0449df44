"""Acknowledged hand-over: what a recorder did not commit goes again, whole, to the next one."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.test import tflow
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from handover import wire
from handover.sender import Sender
from handover.wire import Decoder, Item
from proxy import addon
from proxy.frame_boundaries import FrameBoundaries
from recorder.frames import RawStream

DEFLATE = "permessage-deflate"


class Recorder:
    """One recorder's end of the socket, read and acknowledged when the test says so."""

    def __init__(self, server: socket.socket) -> None:
        self.conn, _ = server.accept()
        self.conn.setblocking(False)
        self.decoder = Decoder()
        self.position = 0
        self.items: list[tuple[int, Item]] = []  # each with the position it ends at

    def read(self) -> list[Item]:
        while True:
            try:
                data = self.conn.recv(1 << 20)
            except BlockingIOError:
                break
            if not data:
                break
            start = self.position - self.decoder.pending_bytes
            for item in self.decoder.feed(data):
                start += wire.HEADER.size + len(item.body)
                self.items.append((start, item))
            self.position += len(data)
        return [item for _, item in self.items]

    def acknowledge(self, position: int) -> None:
        self.conn.sendall(wire.HEADER.pack(wire.ACK, 0, 0, position, 0.0, 0))

    def die(self) -> None:
        self.conn.close()


def listening(path: str) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    return server


def relay_with_session(path: str, extensions: str | None = None) -> tuple[addon.Relay, object]:
    relay = addon.Relay()
    relay.sender = Sender(path)
    assert relay.sender.connect()
    flow = tflow.twebsocketflow()
    relay.sessions[flow.id] = addon._Live(1)
    relay.sender.open(1, id="s1", raw=True, extensions=extensions)
    return relay, flow


def messages(count: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps({"type": "x", "n": n, "pad": "p" * (n % 300)}).encode()
        for n in range(start, start + count)
    ]


def relay_stream(relay: addon.Relay, flow: object, frames: FrameBoundaries, stream: bytes) -> None:
    for offset in range(0, len(stream), 700):  # chunks cut through frames and headers
        chunk = stream[offset : offset + 700]
        frames.feed(chunk)
        relay.raw_received(flow, True, chunk, frames)  # type: ignore[arg-type]
        assert relay.sender is not None
        relay.sender.flush()


def parsed(items: list[Item], parser_of: RawStream) -> list[tuple[int, bytes]]:
    parser, out = parser_of.client, []
    for item in items:
        if item.kind != wire.RAW:
            continue
        if item.flags & wire.RESYNC:
            parser.resync()
        out += [(item.seq + k, body) for k, (_, body) in enumerate(parser.feed(item.body))]
    return out


def test_what_a_dead_recorder_did_not_acknowledge_goes_whole_to_the_next(tmp_path: Path):
    path = str(tmp_path / "recorder.sock")
    server = listening(path)
    relay, flow = relay_with_session(path)
    first = Recorder(server)
    sent = messages(400)
    frames = FrameBoundaries()
    stream = b"".join(Frame(Opcode.TEXT, body).serialize(mask=True) for body in sent)
    relay_stream(relay, flow, frames, stream[: len(stream) // 2])
    first.read()
    # It committed about half of what it got, then died before committing the rest.
    middle = first.items[len(first.items) // 2][0]
    first.acknowledge(middle)
    assert relay.sender is not None
    relay.sender.drain(0.2)
    committed = parsed([item for end, item in first.items if end <= middle], RawStream(None))
    first.die()
    relay.sender.flush()
    relay.sender.read_acknowledgements()  # notices the end of the connection
    assert not relay.sender.connected
    relay_stream(relay, flow, frames, stream[len(stream) // 2 :])  # kept while it is down
    assert relay.sender.connect()
    second = Recorder(server)
    relay.sender.close(1, ts=2.0, code=1000, reason="bye", by="client")
    second.read()
    again = parsed([item for _, item in second.items], RawStream(None))
    raws = [item for _, item in second.items if item.kind == wire.RAW]
    assert raws[0].flags & wire.RESYNC
    assert all(item.flags & wire.REPLAY for item in raws[:2])
    assert relay.sender.dropped == 0
    assert {seq for seq, _ in committed} | {seq for seq, _ in again} == set(range(len(sent)))
    assert all(sent[seq] == body for seq, body in committed + again)
    assert [item.kind for _, item in second.items].count(wire.OPEN) == 1


def test_a_session_closed_while_the_recorder_is_down_is_closed_by_the_next(tmp_path: Path):
    path = str(tmp_path / "recorder.sock")
    server = listening(path)
    sender = Sender(path)
    assert sender.connect()
    first = Recorder(server)
    sender.open(1, id="s1")
    sender.message(1, 0, True, True, 1.0, b'{"type":"a"}')
    sender.close(1, ts=2.0, code=1000, reason="bye", by="client")
    first.read()  # and dies before its writer commits the close
    first.die()
    sender.read_acknowledgements()
    assert sender.connect()
    second = Recorder(server)
    kinds = [(item.kind, item.session) for item in second.read()]
    assert kinds == [(wire.HELLO, 0), (wire.OPEN, 1), (wire.MESSAGE, 1), (wire.CLOSE, 1)]
    second.acknowledge(second.position)
    assert sender.drain(1)
    second.die()
    sender.read_acknowledgements()
    assert sender.connect()
    third = Recorder(server)
    assert [item.kind for item in third.read()] == [wire.HELLO]  # closed in storage: forgotten


def test_a_deflated_stream_a_recorder_saw_part_of_is_dropped_and_counted_after_a_restart(
    tmp_path: Path,
):
    """With context takeover no recorder can inflate the rest of a stream from its middle; with
    `client_no_context_takeover` it can, and gets it again."""
    results: dict[str, tuple[list[dict[str, Any]], list[Item]]] = {}
    for extensions in (DEFLATE, f"{DEFLATE}; client_no_context_takeover"):
        path = str(tmp_path / f"{len(results)}.sock")
        server = listening(path)
        relay, flow = relay_with_session(path, extensions)
        assert relay.sender is not None
        first = Recorder(server)
        frames = FrameBoundaries()
        deflate = [PerMessageDeflate(False, False, 15, 15)]  # as a client compresses
        chunks = [
            Frame(Opcode.TEXT, body).serialize(mask=True, extensions=deflate)
            for body in messages(20)
        ]
        for chunk in chunks[:10]:  # one frame a chunk: each one message
            frames.feed(chunk)
            relay.raw_received(flow, True, chunk, frames)  # type: ignore[arg-type]
        relay.sender.flush()
        first.read()
        ends = [end for end, item in first.items if item.kind == wire.RAW]
        first.acknowledge(ends[3])  # four messages committed
        relay.sender.drain(0.2)
        first.die()
        relay.sender.read_acknowledgements()
        assert relay.sender.connect()
        second = Recorder(server)
        for chunk in chunks[10:]:
            frames.feed(chunk)
            relay.raw_received(flow, True, chunk, frames)  # type: ignore[arg-type]
        relay.sender.drain(0.1)
        items = second.read()
        drops = [item.fields() for item in items if item.kind == wire.DROPPED]
        results[extensions] = (drops, [item for item in items if item.kind == wire.RAW])
    drops, raws = results[DEFLATE]
    assert not raws
    assert {d["reason"] for d in drops} == {"deflate_context"}
    # What the dead recorder may have committed unacknowledged: the store decides, by seq.
    (check,) = [d for d in drops if "unless_stored" in d]
    assert check["session_id"] == "s1"
    assert [s for first, n in check["unless_stored"] for s in range(first, first + n)] == list(
        range(4, 10)
    )
    assert sum(d.get("client", 0) for d in drops) == 10  # relayed after: never handed over
    drops, raws = results[f"{DEFLATE}; client_no_context_takeover"]
    assert not drops
    assert [item.seq for item in raws] == list(range(4, 20))
    assert raws[0].flags & wire.RESYNC


def test_at_shutdown_with_the_recorder_down_what_is_left_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = str(tmp_path / "recorder.sock")
    server = listening(path)
    sender = Sender(path)
    assert sender.connect()
    first = Recorder(server)
    for session in (1, 2):
        sender.open(session, id=f"s{session}")
        for seq in range(3):
            sender.message(session, seq, True, True, 1.0, b'{"type":"a"}')
    first.read()
    first.acknowledge(first.position)
    assert sender.drain(1)  # all of it committed
    sender.message(2, 3, False, True, 1.0, b'{"type":"b"}')
    sender.message(2, 4, False, True, 1.0, b'{"type":"b"}')
    first.die()
    sender.read_acknowledgements()
    assert not sender.drain(0.1)
    (line,) = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "ERROR" and "shutdown" in r.getMessage()
    ]
    assert line == "shutdown: recorder down; 2 message(s) of 1 session(s) relayed but not recorded"


def test_drop_counts_a_recorder_acknowledged_are_told_to_the_next(tmp_path: Path):
    """A recorder's counters start from 0: the relay's drops go on from what the last one had."""
    path = str(tmp_path / "recorder.sock")
    server = listening(path)
    sender = Sender(path, limit_bytes=20)
    assert sender.connect()
    first = Recorder(server)
    sender.open(1, id="s1")
    sender.message(1, 0, True, True, 1.0, b'{"type":"a", "pad": "too long to keep"}')
    sender.flush()
    first.read()
    first.acknowledge(first.position)
    assert sender.drain(1)
    assert [i.fields()["client"] for i in first.read() if i.kind == wire.DROPPED] == [1]
    first.die()
    sender.read_acknowledgements()
    assert sender.connect()
    second = Recorder(server)
    (told,) = [item.fields() for item in second.read() if item.kind == wire.DROPPED]
    assert told == {
        "reason": "handover_full",
        "earlier": True,
        "client": 1,
        "server": 0,
        "client_bytes": 39,
        "server_bytes": 0,
    }


def test_shutdown_waits_while_the_recorder_acknowledges_and_not_once_it_stops(tmp_path: Path):
    """A large backlog (a spill) takes the recorder longer than any fixed wait; a recorder whose
    database is locked acknowledges nothing, and waiting on it only delays the exit."""
    path = str(tmp_path / "recorder.sock")
    server = listening(path)
    sender = Sender(path)
    assert sender.connect()
    recorder = Recorder(server)
    sender.open(1, id="s1")
    for seq, body in enumerate(messages(20)):
        sender.message(1, seq, True, True, 1.0, body)
    sender.flush()

    def acknowledge_one_by_one() -> None:  # 20 acknowledgements 0.1 s apart: 2 s in all
        while len(recorder.read()) < 21:
            time.sleep(0.01)
        for position, _ in recorder.items:
            time.sleep(0.1)
            recorder.acknowledge(position)

    acknowledging = threading.Thread(target=acknowledge_one_by_one)
    acknowledging.start()
    started = time.monotonic()
    assert sender.drain(timeout_s=60, quiet_s=0.5)
    assert time.monotonic() - started >= 1.5  # past the quiet bound: acknowledgements came
    acknowledging.join()

    for seq, body in enumerate(messages(5, start=20), start=20):
        sender.message(1, seq, True, True, 2.0, body)
    started = time.monotonic()
    assert not sender.drain(timeout_s=60, quiet_s=0.5)  # nothing acknowledged any more
    assert time.monotonic() - started < 30
    sender.shutdown()
