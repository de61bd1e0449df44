"""The relay-to-recorder hand-over: frames come out byte for byte, drops are counted, never lost."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from mitmproxy.test import tflow
from websockets.frames import Frame, Opcode

from handover import wire
from handover.wire import Decoder, Item, Sender
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


def test_a_sender_without_a_recorder_drops_counts_and_reports_on_connect(tmp_path: Path):
    sender = Sender(str(tmp_path / "nobody.sock"))
    assert not sender.connect()
    sender.open(1, id="s1")
    sender.message(1, 0, True, True, 1.0, b'{"type":"a"}')
    sender.message(1, 1, False, True, 1.0, b'{"type":"bb"}')
    assert sender.dropped == 2
    server, path = listening(tmp_path)
    sender.path = path
    assert sender.connect()
    conn, _ = server.accept()
    sender.message(1, 2, True, True, 2.0, b'{"type":"c"}')
    sender.drain(5)
    items = received(conn)
    kinds = [item.kind for item in items]
    assert kinds.count(wire.OPEN) >= 1  # the session opened while it was down is not lost
    (dropped,) = [item.fields() for item in items if item.kind == wire.DROPPED]
    assert dropped == {
        "reason": "recorder_down",
        "client": 1,
        "server": 1,
        "client_bytes": 12,
        "server_bytes": 13,
    }
    (message,) = [item for item in items if item.kind == wire.MESSAGE]
    assert (message.seq, message.body) == (2, b'{"type":"c"}')


def test_a_recorder_that_falls_behind_costs_drops_not_waiting(tmp_path: Path):
    server, path = listening(tmp_path)
    sender = Sender(path, limit_bytes=256 * 1024)
    assert sender.connect()
    conn, _ = server.accept()  # and never read until the end: the recorder is stuck
    sender.open(1, id="s1")
    frame = b"x" * 10_000
    sent = 2000  # 20 MB: far more than the socket buffer and the sender's limit
    for seq in range(sent):
        sender.message(1, seq, seq % 2 == 0, True, 1.0, frame)
    assert sender.dropped > 0
    sender.close(1, ts=2.0, code=1000, reason="bye", by="client")
    items: list[Item] = []
    decoder = Decoder()
    conn.setblocking(False)
    while sender.connected and not sender.drain(0.05):
        items.extend(_read_some(conn, decoder))
    items.extend(_read_some(conn, decoder))
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
    frames, items, decoder = FrameBoundaries(), list[Item](), Decoder()
    conn.setblocking(False)
    for offset in range(0, len(stream), 1_000):  # chunks cut through frames and headers
        chunk = stream[offset : offset + 1_000]
        frames.feed(chunk)
        relay.raw_received(flow, True, chunk, frames)
        if offset % 200_000 == 0:  # now and then the recorder reads a little
            items.extend(_read_some(conn, decoder))
    relay.sender.drain(5)
    items.extend(_read_some(conn, decoder))
    parser, parsed = RawStream(None).client, list[tuple[int, bytes]]()
    for item in (i for i in items if i.kind == wire.RAW):
        if item.flags & wire.RESYNC:
            parser.resync()
        parsed += [(item.seq + k, body) for k, (_, body) in enumerate(parser.feed(item.body))]
    drops = [item.fields() for item in items if item.kind == wire.DROPPED]
    assert drops, "the recorder never fell behind: nothing was tested"
    assert all(sent[seq] == body for seq, body in parsed)
    assert len(parsed) + sum(d["client"] for d in drops) == len(sent)
