"""The relay-to-recorder hand-over: frames come out byte for byte, drops are counted, never lost."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from mitmproxy.test import tflow
from websockets.frames import Frame, Opcode

from handover import wire
from handover.sender import Sender
from handover.wire import Decoder, Item
from proxy import addon
from proxy.frame_boundaries import FrameBoundaries
from recorder.frames import RawStream


def received(conn: socket.socket) -> list[Item]:
    """Everything the peer has been sent so far, decoded."""
    conn.setblocking(False)
    return _read_some(conn, Decoder())


def listening(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "recorder.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    return server, path


@given(
    frames=st.lists(st.tuples(st.booleans(), st.booleans(), st.binary(max_size=300)), max_size=20),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=30),
)
def test_frames_come_out_byte_for_byte_however_the_stream_is_cut(frames, cuts):
    stream = b"".join(
        wire.HEADER.pack(
            wire.MESSAGE,
            (wire.FROM_CLIENT if c else 0) | (wire.IS_TEXT if t else 0),
            7,
            seq,
            1.5 + seq,
            len(content),
        )
        + content
        for seq, (c, t, content) in enumerate(frames)
    )
    decoder, items, offset = Decoder(), list[Item](), 0
    for cut in cuts:
        items.extend(decoder.feed(stream[offset : offset + cut]))
        offset += cut
    items.extend(decoder.feed(stream[offset:]))
    assert [(i.from_client, i.is_text, i.body) for i in items] == frames
    assert [(i.session, i.seq, i.ts) for i in items] == [
        (7, n, 1.5 + n) for n in range(len(frames))
    ]
    assert decoder.pending_bytes == 0


def test_a_sender_without_a_recorder_keeps_what_fits_drops_the_rest_and_sends_both_on_connect(
    tmp_path: Path,
):
    sender = Sender(str(tmp_path / "recorder.sock"), limit_bytes=40)
    assert not sender.connect()  # nobody listens there yet
    sender.open(1, id="s1")
    sender.message(1, 0, True, True, 1.0, b'{"type":"a"}')
    sender.message(1, 1, False, True, 1.0, b'{"type":"bb"}')
    sender.message(1, 2, False, True, 1.0, b'{"type":"cccccccccc"}')  # past 40 bytes
    assert sender.dropped == 1
    server, _ = listening(tmp_path)
    assert sender.connect()
    conn, _ = server.accept()
    recorder = FakeRecorder(conn)
    assert sender.drain(5)  # all of it acknowledged: room again
    sender.message(1, 3, True, True, 2.0, b'{"type":"d"}')
    assert sender.drain(5)
    items = recorder.items
    assert [item.kind for item in items].count(wire.OPEN) == 1
    (dropped,) = [item.fields() for item in items if item.kind == wire.DROPPED]
    assert dropped == {
        "reason": "recorder_down",
        "client": 0,
        "server": 1,
        "client_bytes": 0,
        "server_bytes": 21,
    }
    messages = [(item.seq, item.body) for item in items if item.kind == wire.MESSAGE]
    assert messages == [(0, b'{"type":"a"}'), (1, b'{"type":"bb"}'), (3, b'{"type":"d"}')]


def test_a_recorder_that_falls_behind_costs_drops_not_waiting(tmp_path: Path):
    server, path = listening(tmp_path)
    sender = Sender(path, limit_bytes=256 * 1024)
    assert sender.connect()
    conn, _ = server.accept()  # and never read until the end: the recorder is stuck
    recorder = FakeRecorder(conn, read_now=False)
    sender.open(1, id="s1")
    frame = b"x" * 10_000
    sent = 2000  # 20 MB: far more than the socket buffer and the sender's limit
    for seq in range(sent):
        sender.message(1, seq, seq % 2 == 0, True, 1.0, frame)
    assert sender.dropped > 0
    sender.close(1, ts=2.0, code=1000, reason="bye", by="client")
    recorder.start()
    assert sender.drain(5)
    items = recorder.items
    messages = [item for item in items if item.kind == wire.MESSAGE]
    drops = [item.fields() for item in items if item.kind == wire.DROPPED]
    dropped = sum(d["client"] + d["server"] for d in drops)
    assert {d["reason"] for d in drops} == {"handover_full"}
    assert len(messages) + dropped == sent
    assert all(item.body == frame for item in messages)
    kinds = [item.kind for item in items]
    assert kinds.count(wire.CLOSE) == 1  # the close was not dropped
    assert kinds.index(wire.CLOSE) > max(i for i, k in enumerate(kinds) if k == wire.MESSAGE)
    seqs = [item.seq for item in messages]
    assert seqs == sorted(seqs)


def _read_some(conn: socket.socket, decoder: Decoder) -> list[Item]:
    items: list[Item] = []
    while True:
        try:
            data = conn.recv(1 << 20)
        except BlockingIOError:
            return items
        if not data:
            return items
        items.extend(decoder.feed(data))


class FakeRecorder:
    """The recorder's end of the socket, on a thread: reads what comes and acknowledges it."""

    def __init__(self, conn: socket.socket, read_now: bool = True) -> None:
        self.conn = conn
        self.decoder = Decoder()
        self.all: list[Item] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        if read_now:
            self.start()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        position = 0
        while data := self.conn.recv(1 << 20):
            position += len(data)
            self.all += self.decoder.feed(data)
            self.conn.sendall(wire.HEADER.pack(wire.ACK, 0, 0, position, 0.0, 0))

    @property
    def items(self) -> list[Item]:
        return list(self.all)


def test_raw_chunks_dropped_while_behind_resume_at_a_message_and_every_message_is_counted(
    tmp_path: Path,
):
    """The raw relay's hand-over (`Relay.raw_received`) with a recorder that falls behind: the
    recorder parses whole messages only, numbered as the relay numbered them, and what it
    parses plus what the relay counts as dropped is what was relayed."""
    server, path = listening(tmp_path)
    relay = addon.Relay()
    relay.sender = Sender(path, limit_bytes=64 * 1024)
    assert relay.sender.connect()
    conn, _ = server.accept()
    flow = tflow.twebsocketflow()
    relay.sessions[flow.id] = addon._Live(1)
    sent = [json.dumps({"type": "x", "n": n, "pad": "p" * (n % 700)}).encode() for n in range(3000)]
    stream = b"".join(Frame(Opcode.TEXT, body).serialize(mask=True) for body in sent)
    frames, recorder = FrameBoundaries(), FakeRecorder(conn, read_now=False)
    threading.Timer(0.05, recorder.start).start()  # behind from the start
    for offset in range(0, len(stream), 1_000):  # chunks cut through frames and headers
        chunk = stream[offset : offset + 1_000]
        frames.feed(chunk)
        relay.raw_received(flow, True, chunk, frames)
        if offset % 200_000 == 0:  # now and then the relay reads acknowledgements
            time.sleep(0.01)
            relay.sender.drain(0)
    relay.sender.close(1, ts=2.0, code=1000, reason="bye", by="client")
    assert relay.sender.drain(5)
    items = recorder.items
    parser, parsed = RawStream(None).client, list[tuple[int, bytes]]()
    for item in (i for i in items if i.kind == wire.RAW):
        if item.flags & wire.RESYNC:
            parser.resync()
        parsed += [(item.seq + k, body) for k, (_, body) in enumerate(parser.feed(item.body))]
    drops = [item.fields() for item in items if item.kind == wire.DROPPED]
    assert drops, "the recorder never fell behind: nothing was tested"
    assert all(sent[seq] == body for seq, body in parsed)
    assert len(parsed) + sum(d["client"] for d in drops) == len(sent)


def test_an_empty_message_is_handed_over_and_what_follows_it_too(tmp_path: Path):
    # An empty part at the front of what is left to send made every later `sendmsg` send
    # nothing: the relay spun on it (hung once in CI).
    server, path = listening(tmp_path)
    sender = Sender(path)
    assert sender.connect()
    conn, _ = server.accept()
    recorder = FakeRecorder(conn)
    sender.open(1, id="s1")
    sender.message(1, 0, True, False, 1.0, b"")
    sender.message(1, 1, False, True, 1.0, b'{"type":"after"}')
    assert sender.drain(5)
    messages = [(item.seq, item.body) for item in recorder.items if item.kind == wire.MESSAGE]
    assert messages == [(0, b""), (1, b'{"type":"after"}')]
