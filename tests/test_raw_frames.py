"""The raw relay's frame-header reader and the recorder's frame parser, on frames the
`websockets` codec builds: masked, fragmented, compressed, binary, cut anywhere."""

from __future__ import annotations

import json

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode

from proxy.frame_boundaries import FrameBoundaries
from recorder.frames import FrameError, RawStream, deflate_params

DEFLATE_HEADER = "permessage-deflate; client_max_window_bits=15"


def deflate() -> PerMessageDeflate:
    return PerMessageDeflate(False, False, 15, 15)


def event(kind: str, **fields: object) -> bytes:
    return json.dumps({"type": kind, **fields}).encode()


def client_stream(compressed: bool) -> tuple[bytes, list[tuple[bool, bytes]]]:
    """A client's masked frames (a text message in three fragments with a ping between them,
    a binary message, a large text message) and the messages they carry."""
    extensions = [deflate()] if compressed else []
    big = event("input_audio_buffer.append", audio="QUJD" * 20_000)
    parts = [
        Frame(Opcode.TEXT, b'{"type":"session.', fin=False),
        Frame(Opcode.PING, b"are you there"),
        Frame(Opcode.CONT, b'update","session"', fin=False),
        Frame(Opcode.CONT, b':{"voice":"alloy"}}'),
        Frame(Opcode.BINARY, bytes(range(256)) * 3),
        Frame(Opcode.TEXT, big),
    ]
    wire = b"".join(frame.serialize(mask=True, extensions=extensions) for frame in parts)
    messages = [
        (True, b'{"type":"session.update","session":{"voice":"alloy"}}'),
        (False, bytes(range(256)) * 3),
        (True, big),
    ]
    return wire, messages


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000, 1_000_000])
def test_the_recorder_parses_masked_fragmented_compressed_and_binary_frames(
    compressed: bool, chunk_size: int
):
    wire, messages = client_stream(compressed)
    stream = RawStream(DEFLATE_HEADER if compressed else None)
    parsed = [m for chunk in cut(wire, chunk_size) for m in stream.client.feed(chunk)]
    assert parsed == messages


def test_the_recorder_reads_the_servers_unmasked_frames_with_its_own_deflate_window():
    header = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
    server = PerMessageDeflate(True, True, 10, 10)  # what the server negotiated for itself
    frames = [Frame(Opcode.TEXT, event("response.done", n=n)) for n in range(3)]
    wire = b"".join(f.serialize(mask=False, extensions=[server]) for f in frames)
    assert RawStream(header).server.feed(wire) == [
        (True, event("response.done", n=n)) for n in range(3)
    ]


def test_a_stream_the_codec_refuses_raises_until_the_relay_resyncs():
    direction = RawStream(None).client
    with pytest.raises(FrameError):
        direction.feed(Frame(Opcode.CONT, b"no start").serialize(mask=True))
    with pytest.raises(FrameError):
        direction.feed(Frame(Opcode.TEXT, b"{}").serialize(mask=True))
    direction.resync()
    assert direction.feed(Frame(Opcode.TEXT, b"{}").serialize(mask=True)) == [(True, b"{}")]


def test_deflate_params_are_read_from_the_negotiated_header_only():
    assert deflate_params(None) is None
    assert deflate_params("x-other") is None
    assert deflate_params(DEFLATE_HEADER) == {"client_max_window_bits": "15"}


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 64, 1_000_000])
def test_frame_boundaries_count_messages_and_read_the_masked_close(chunk_size: int):
    wire, _ = client_stream(compressed=True)
    close = Frame(Opcode.CLOSE, Close(4000, "bye now").serialize()).serialize(mask=True)
    frames = FrameBoundaries()
    ended = 0
    for chunk in cut(wire + close, chunk_size):
        assert frames.feed(chunk) == len(chunk)
        ended += frames.ended
    assert (ended, frames.close, frames.between_frames) == (3, (4000, "bye now"), True)


def test_frame_boundaries_find_where_a_message_starts_after_a_gap():
    first = Frame(Opcode.TEXT, b"a" * 100, fin=False).serialize(mask=True)
    ping = Frame(Opcode.PING, b"p").serialize(mask=True)
    last = Frame(Opcode.CONT, b"b" * 10).serialize(mask=True)
    second = Frame(Opcode.BINARY, b"c" * 300).serialize(mask=True)
    frames = FrameBoundaries()
    frames.feed(first[:50])
    # A ping inside a fragmented message, nor its last frame, is a place to start parsing.
    chunk = first[50:] + ping + last + second
    frames.feed(chunk)
    assert frames.message_start == len(chunk) - len(second)
    assert (frames.ended_before_start, frames.ended) == (1, 2)


def test_frame_boundaries_stop_at_the_end_of_the_frame_under_way():
    one = Frame(Opcode.TEXT, b"x" * 200).serialize(mask=True)
    two = Frame(Opcode.TEXT, b"y" * 20).serialize(mask=True)
    frames = FrameBoundaries()
    frames.feed(one[:3])  # even the header is cut
    assert not frames.between_frames
    assert frames.feed(one[3:] + two, stop_between_frames=True) == len(one) - 3
    assert frames.between_frames


def test_an_empty_close_frame_is_1005_as_wsproto_reports_it():
    frames = FrameBoundaries()
    frames.feed(Frame(Opcode.CLOSE, b"").serialize(mask=False))
    assert frames.close == (1005, "")
