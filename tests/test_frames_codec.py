"""The recorder's frame reader against websockets' own sans-I/O `Protocol`, on any bytes."""

from __future__ import annotations

import logging
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

from recorder.frames import Direction, FrameError, RawStream, deflate_decoder, deflate_params

_quiet = logging.getLogger("tests.frames_codec")
_quiet.setLevel(logging.CRITICAL)
DEFLATE_HEADERS = [
    None,
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
]


class ProtocolDirection:
    """How the recorder read a direction before: websockets' `Protocol`, events and all."""

    def __init__(self, from_client: bool, header: str | None) -> None:
        side = Side.SERVER if from_client else Side.CLIENT
        self.protocol = Protocol(side, max_size=None, logger=_quiet)
        params = deflate_params(header)
        if params is not None:
            self.protocol.extensions = [deflate_decoder(params, from_client)]
        self.parts: list[bytes] = []
        self.is_text = False

    def feed(self, chunk: bytes) -> list[tuple[bool, bytes]]:
        if self.protocol.parser_exc is not None:
            raise FrameError("unreadable since an earlier error")
        self.protocol.receive_data(chunk)
        self.protocol.data_to_send()
        messages = []
        for frame in self.protocol.events_received():
            assert isinstance(frame, Frame)
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self.is_text, self.parts = frame.opcode is Opcode.TEXT, [bytes(frame.data)]
            elif frame.opcode is Opcode.CONT:
                self.parts.append(bytes(frame.data))
            else:
                continue
            if frame.fin:
                messages.append((self.is_text, b"".join(self.parts)))
        if self.protocol.parser_exc is not None:
            raise FrameError(str(self.protocol.parser_exc))
        return messages


def raw_frame(
    opcode: int,
    fin: bool,
    rsv: int,
    payload: bytes,
    masked: bool,
    mask: bytes = b"\x01\x02\x03\x04",
) -> bytes:
    """A frame built bit by bit, so that it can break any rule."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([(0x80 if masked else 0) | size])
    elif size < 65536:
        head += bytes([(0x80 if masked else 0) | 126]) + struct.pack("!H", size)
    else:
        head += bytes([(0x80 if masked else 0) | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


sizes = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536]) | st.integers(0, 300)
close_payloads = st.sampled_from(
    [b"", b"\x03", Close(1000, "bye").serialize(), Close(4000, "x").serialize(), b"\x03\xe8\xff"]
) | st.builds(lambda code: struct.pack("!H", code), st.integers(0, 65535))


@st.composite
def frame_bytes(draw: st.DrawFn, masked: bool, encoder: PerMessageDeflate | None) -> bytes:
    """One frame: mostly well-formed (fragments, control frames, compressed), sometimes not."""
    kind = draw(st.sampled_from(["message", "fragment", "control", "close", "any"]))
    if kind == "message":
        data = draw(st.binary(max_size=300)) if draw(st.booleans()) else b"x" * draw(sizes)
        opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.CONT]))
        extensions = [encoder] if encoder is not None and opcode is not Opcode.CONT else []
        frame = Frame(opcode, data, fin=draw(st.booleans()))
        return frame.serialize(mask=masked, extensions=extensions)
    if kind == "control":
        opcode = draw(st.sampled_from([Opcode.PING, Opcode.PONG]))
        return raw_frame(opcode, draw(st.booleans()), 0, b"p" * draw(sizes), masked)
    if kind == "close":
        return raw_frame(Opcode.CLOSE, True, 0, draw(close_payloads), masked)
    return raw_frame(
        draw(st.integers(0, 15)),
        draw(st.booleans()),
        draw(st.sampled_from([0, 0, 0, 4, 2, 1])),
        draw(st.binary(max_size=200)),
        draw(st.sampled_from([masked, masked, not masked])),
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[bool, str | None, list[bytes], set[int]]:
    """A direction, its extensions header, its bytes cut into chunks, the chunks to resync at."""
    from_client = draw(st.booleans())
    header = draw(st.sampled_from(DEFLATE_HEADERS))
    params = deflate_params(header)
    encoder = None if params is None else PerMessageDeflate(False, False, 15, 15)
    frames = draw(st.lists(frame_bytes(from_client, encoder), max_size=12))
    wire = b"".join(frames) + draw(st.binary(max_size=8))
    if draw(st.booleans()):  # a frame a chunk, as the relay hands most over
        chunks = [*frames, wire[len(b"".join(frames)) :]]
    else:
        cuts = sorted(draw(st.sets(st.integers(0, len(wire)), max_size=10)))
        chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    resyncs = draw(st.sets(st.integers(0, len(chunks) - 1), max_size=2))
    return from_client, header, [c for c in chunks if c], resyncs


def outcome(direction: Direction | ProtocolDirection, chunk: bytes) -> object:
    try:
        return direction.feed(chunk)
    except FrameError:
        return FrameError


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_every_chunk_gives_what_websockets_protocol_gives(
    stream: tuple[bool, str | None, list[bytes], set[int]],
) -> None:
    from_client, header, chunks, resyncs = stream
    ours = RawStream(header).direction(from_client)
    theirs = ProtocolDirection(from_client, header)
    for index, chunk in enumerate(chunks):
        if index in resyncs:
            ours.resync()
            theirs = ProtocolDirection(from_client, header)
        assert outcome(ours, chunk) == outcome(theirs, chunk)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 13, 4096])
def test_a_frame_cut_anywhere_is_joined_once_whole(chunk_size: int) -> None:
    big = Frame(Opcode.TEXT, b"a" * 70_000).serialize(mask=True)
    small = Frame(Opcode.BINARY, b"b" * 200).serialize(mask=True)
    wire = big + small
    direction = RawStream(None).client
    messages = [
        m for i in range(0, len(wire), chunk_size) for m in direction.feed(wire[i : i + chunk_size])
    ]
    assert messages == [(True, b"a" * 70_000), (False, b"b" * 200)]


def test_what_follows_a_close_frame_is_discarded_not_refused() -> None:
    close = raw_frame(Opcode.CLOSE, True, 0, Close(1000, "bye").serialize(), masked=True)
    direction = RawStream(None).client
    assert direction.feed(close + b"\xff\xff garbage") == []
    assert direction.feed(Frame(Opcode.TEXT, b"{}").serialize(mask=True)) == []
    direction.resync()
    assert direction.feed(Frame(Opcode.TEXT, b"{}").serialize(mask=True)) == [(True, b"{}")]
