"""Through a real `rtrec proxy`, both sockets carry the same bytes, frame by frame (masks,
fragments, compression and all), every message is still recorded, and shutdown's 1001 close
reaches both peers between frames."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.utils import accept_key, apply_mask

from tests.support.net import free_port
from tests.support.proxy import ProxyProcess
from tests.test_reliability_transparency import closed_session

KEY = "sk-raw-relay-test-0123456789"
DEFLATE = "permessage-deflate"


def frames_of(parts: list[Frame], mask: bool, compressed: bool) -> list[bytes]:
    # One encoder per direction: with context takeover each message depends on the last.
    extensions = [PerMessageDeflate(False, False, 15, 15)] if compressed else []
    return [frame.serialize(mask=mask, extensions=extensions) for frame in parts]


def client_frames(
    compressed: bool, ping: bool = True
) -> tuple[list[bytes], list[tuple[bool, bytes]]]:
    """Masked frames: a text message in fragments (a ping between them), binary, large."""
    audio = json.dumps({"type": "input_audio_buffer.append", "audio": "QUJD" * 30_000}).encode()
    parts = [
        Frame(Opcode.TEXT, b'{"type":"session.', fin=False),
        *([Frame(Opcode.PING, b"ping")] if ping else []),
        Frame(Opcode.CONT, b'update","session":{}}'),
        Frame(Opcode.BINARY, bytes(range(256)) * 4),
        Frame(Opcode.TEXT, audio),
    ]
    messages = [(True, b'{"type":"session.update","session":{}}'), (False, bytes(range(256)) * 4)]
    return frames_of(parts, True, compressed), [*messages, (True, audio)]


def server_frames(compressed: bool) -> tuple[list[bytes], list[tuple[bool, bytes]]]:
    created = json.dumps({"type": "session.created", "session": {"id": "sess_raw"}}).encode()
    delta = json.dumps({"type": "response.output_audio.delta", "delta": "AAAA" * 20_000}).encode()
    parts = [
        Frame(Opcode.TEXT, created),
        Frame(Opcode.TEXT, delta[:1000], fin=False),
        Frame(Opcode.CONT, delta[1000:]),
        Frame(Opcode.BINARY, b"\x00\xff" * 300),
    ]
    messages = [(True, created), (True, delta), (False, b"\x00\xff" * 300)]
    return frames_of(parts, False, compressed), messages


def close_frame(mask: bool, code: int, reason: str) -> bytes:
    return Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=mask)


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


@dataclass
class RawUpstream:
    """A WebSocket service speaking raw bytes: answers the upgrade, sends `frames`, logs every
    byte it receives after the 101, and answers the close frame `answer_after`."""

    frames: list[bytes] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    request: bytes = b""
    answer_after: bytes = b""  # the client's close frame, answered with the service's
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.request = await read_head(reader)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in self.request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = accept_key(key.decode()).encode()
        extensions = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + b"Sec-WebSocket-Accept: "
            + accept
            + b"\r\n"
            + (extensions if DEFLATE.encode() in self.request else b"")
            + b"\r\n"
        )
        for frame in self.frames:
            writer.write(frame)
            await writer.drain()
        while data := await reader.read(65536):
            self.received += data
            if self.answer_after and self.received.endswith(self.answer_after):
                writer.write(close_frame(False, 1000, "bye"))
        writer.close()
        self.closed.set()


async def upgrade(port: int, marker: str, compressed: bool) -> tuple[asyncio.StreamReader, ...]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        f"GET /v1/realtime?model=gpt-realtime&trial={marker} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {KEY}\r\n".encode()
        + b"Sec-WebSocket-Key: "
        + key
        + b"\r\n"
        + (f"Sec-WebSocket-Extensions: {DEFLATE}\r\n".encode() if compressed else b"")
        + b"\r\n"
    )
    head = await read_head(reader)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer  # type: ignore[return-value]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "permessage-deflate"])
def test_both_sockets_carry_the_same_bytes_and_every_message_is_recorded(
    run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str, compressed: bool
):
    relayed = relay_one_session(run_proxy, sqlite_db_url, compressed, "on")
    upstream = relayed.upstream
    assert (DEFLATE.encode() in upstream.request) == compressed
    assert bytes(upstream.received) == relayed.client_sent
    assert relayed.client_received == relayed.server_sent
    marker = relayed.marker
    assert_recorded(sqlite_db_url, marker, compressed)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "permessage-deflate"])
def test_mitmproxys_own_layer_still_records_every_message(
    run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str, compressed: bool
):
    """`--raw-relay off`: messages go through mitmproxy's layer and the MESSAGE hand-over.
    No ping inside the fragmented message here: wsproto 1.3.2 then fails to inflate the next
    fragment and mitmproxy closes with 1007 (the raw relay passes such a stream on)."""
    marker = relay_one_session(run_proxy, sqlite_db_url, compressed, "off", ping=False).marker
    assert_recorded(sqlite_db_url, marker, compressed)


@dataclass
class Relayed:
    """One session through the proxy: the bytes each end sent, what the client received, the
    service (with what it received), and the session's marker."""

    client_sent: bytes
    server_sent: bytes
    client_received: bytes
    upstream: RawUpstream
    marker: str


def relay_one_session(
    run_proxy: Callable[..., ProxyProcess],
    db_url: str,
    compressed: bool,
    raw_relay: str,
    ping: bool = True,
) -> Relayed:
    """`client_frames` and `server_frames` through `rtrec proxy --raw-relay RAW_RELAY`, each
    side's stream cut into writes at odd places, ending with the client's close."""
    sent_by_client, _ = client_frames(compressed, ping)
    sent_by_server, _ = server_frames(compressed)
    client_close = close_frame(True, 1000, "bye")
    marker = uuid.uuid4().hex

    async def session() -> tuple[bytes, RawUpstream]:
        upstream = RawUpstream(sent_by_server, answer_after=client_close)
        upstream_port = free_port()
        server = await asyncio.start_server(upstream.serve, "127.0.0.1", upstream_port)
        proxy = await asyncio.to_thread(
            run_proxy, f"http://127.0.0.1:{upstream_port}", db_url, "--raw-relay", raw_relay
        )
        reader, writer = await upgrade(proxy.port, marker, compressed)
        stream = b"".join(sent_by_client) + client_close
        for cut_at in range(0, len(stream), 7_001):  # cut anywhere, mid-header too
            writer.write(stream[cut_at : cut_at + 7_001])  # type: ignore[attr-defined]
            await asyncio.sleep(0.001)
        received = await asyncio.wait_for(reader.read(-1), 30)
        await asyncio.wait_for(upstream.closed.wait(), 30)
        server.close()
        return received, upstream

    received, upstream = asyncio.run(session())
    server_sent = b"".join(sent_by_server) + close_frame(False, 1000, "bye")
    return Relayed(b"".join(sent_by_client) + client_close, server_sent, received, upstream, marker)


def assert_recorded(db_url: str, marker: str, compressed: bool) -> None:
    """Every message of the session recorded whole, in order per direction, seq without gaps."""
    _, client_messages = client_frames(compressed)
    _, server_messages = server_frames(compressed)
    session_row, rows = closed_session(db_url, marker)
    assert (session_row.close_code, session_row.close_reason, session_row.closed_by) == (
        1000,
        "bye",
        "client",
    )
    for direction, messages in (("client", client_messages), ("server", server_messages)):
        recorded = [row for row in rows if row.direction == direction]
        assert [row.size_bytes for row in recorded] == [len(body) for _, body in messages]
    assert sorted(row.seq for row in rows) == list(range(len(rows)))
    assert [row.type for row in rows if row.direction == "server"][:2] == [
        "session.created",
        "response.output_audio.delta",
    ]


def test_shutdown_sends_1001_to_both_peers_between_frames(
    run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    """SIGTERM while a client frame is half relayed: the service gets the whole frame, then the
    close; the client gets the close after the service's last whole frame."""
    half_frame = Frame(Opcode.TEXT, b'{"type":"x","pad":"' + b"p" * 5000 + b'"}')
    whole = half_frame.serialize(mask=True)
    marker = uuid.uuid4().hex

    async def session() -> tuple[bytes, RawUpstream, ProxyProcess]:
        upstream = RawUpstream(
            [Frame(Opcode.TEXT, b'{"type":"session.created"}').serialize(mask=False)]
        )
        upstream_port = free_port()
        server = await asyncio.start_server(upstream.serve, "127.0.0.1", upstream_port)
        proxy = await asyncio.to_thread(
            run_proxy, f"http://127.0.0.1:{upstream_port}", sqlite_db_url
        )
        reader, writer = await upgrade(proxy.port, marker, compressed=False)
        first = await reader.readexactly(len(upstream.frames[0]))
        writer.write(whole[:3000])  # type: ignore[attr-defined]
        while len(upstream.received) < 3000:
            await asyncio.sleep(0.01)
        proxy.process.send_signal(signal.SIGTERM)
        # The service's stream is between frames: the client's close comes at once; the
        # service's waits for the rest of the client's frame.
        going_away = close_frame(False, 1001, "proxy shut down")
        closed = await asyncio.wait_for(reader.readexactly(len(going_away)), 30)
        writer.write(whole[3000:] + whole)  # type: ignore[attr-defined]  # the 2nd is not sent
        received = first + closed + await asyncio.wait_for(reader.read(-1), 30)
        await asyncio.wait_for(upstream.closed.wait(), 30)
        server.close()
        return received, upstream, proxy

    received, upstream, proxy = asyncio.run(session())
    assert bytes(upstream.received[: len(whole)]) == whole
    rest = bytes(upstream.received[len(whole) :])
    assert rest[:2] == b"\x88\x91"  # one masked close frame, 17 bytes of payload
    assert Close.parse(apply_mask(rest[6:], rest[2:6])) == Close(1001, "proxy shut down")
    assert received == upstream.frames[0] + close_frame(False, 1001, "proxy shut down")
    assert proxy.process.wait(60) == 0
    session_row, rows = closed_session(sqlite_db_url, marker)
    assert (session_row.close_code, session_row.close_reason, session_row.closed_by) == (
        1001,
        "proxy shut down",
        None,
    )
    assert [(row.direction, row.type) for row in rows] == [
        ("server", "session.created"),
        ("client", "x"),
    ]
