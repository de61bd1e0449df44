"""Odd frames, secrets everywhere, refused upgrades, beta clients and stock mitmdump, end to end."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from simulator.server import REFUSE_UPGRADE_KEY, FakeRealtimeServer
from storage.db import make_engine
from storage.models import Event, RealtimeSession, UpgradeFailure, table
from tests.pgserver import PostgresServer
from tests.support.frames import spec_type
from tests.support.net import free_port
from tests.support.proxy import ProxyProcess, start_proxy, stored_bytes

HEADER_KEY = "sk-header-key-1111111111111111"
SUBPROTOCOL_KEY = "ek_subprotocol_key_2222222222222"
QUERY_KEY = "sk-query-key-3333333333333333"
PAYLOAD_KEY = "sk-payload-key-4444444444444444"
SECRET_VALUE = "ek_client_secret_5555555555555"


def rows(db_url: str, model: type) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        t = table(model)
        result = list(connection.execute(select(t).order_by(t.c.id)))
    engine.dispose()
    return result


def ws_url(proxy: ProxyProcess, path: str) -> str:
    return f"ws://127.0.0.1:{proxy.port}{path}"


async def test_odd_frames_are_recorded_and_relayed_unchanged(
    fake_server: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(fake_server.base_url, db_url)
    big = orjson.dumps(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "x" * 2_000_000}],
            },
        }
    )
    client_frames: list[str | bytes] = [
        b"\x00\x01binary\xff",
        "this is not json",
        '{"type": 7}',
        '{"type":"brand.new.client.event"}',
        big.decode(),
    ]
    server_frames: list[str | bytes] = [
        b"\xfe\xfdserver-binary",
        "{oops",
        '{"type":"brand.new.server.event","x":1}',
        json.dumps({"type": "x.big", "blob": "y" * 2_500_000}),
    ]
    async with connect(
        ws_url(proxy, "/v1/realtime?model=gpt-realtime"),
        additional_headers={"Authorization": f"Bearer {HEADER_KEY}"},
        max_size=None,
    ) as ws:
        received: list[str | bytes] = [await ws.recv()]  # session.created
        for frame in client_frames:
            await ws.send(frame)
        conn_id = fake_server.handshakes[-1].conn_id
        for frame in server_frames:
            await fake_server.send_raw(conn_id, frame)
        while len([m for m in fake_server.messages(conn_id, "client")]) < len(client_frames):
            await asyncio.sleep(0.01)
        expected_server = [m.data for m in fake_server.messages(conn_id, "server")]
        while len(received) < len(expected_server):
            received.append(await asyncio.wait_for(ws.recv(), 5))
    assert [m.data for m in fake_server.messages(conn_id, "client")] == client_frames
    assert received == expected_server
    assert proxy.stop() == 0

    events = rows(db_url, Event)
    client_types = [e.type for e in events if e.direction == "client"]
    assert client_types == [
        "binary",
        "invalid",
        "invalid",
        "brand.new.client.event",
        "conversation.item.create",
    ]
    server_types = [e.type for e in events if e.direction == "server"]
    assert server_types == [spec_type(m.data) for m in fake_server.messages(conn_id, "server")]
    for odd in ("binary", "invalid", "brand.new.server.event", "x.big"):
        assert odd in server_types
    sizes = {e.type: e.size_bytes for e in events}
    assert sizes["conversation.item.create"] == len(big)
    assert sizes["x.big"] == len(server_frames[-1])
    by_seq = {(e.direction, e.type): e for e in events}
    assert by_seq[("client", "binary")].payload is None  # binary frames: size only
    assert by_seq[("server", "invalid")].payload == "{oops"


async def test_keys_are_redacted_wherever_they_are_planted(
    fake_server: FakeRealtimeServer,
    run_proxy: Callable[..., ProxyProcess],
    db_url: str,
    tmp_path: Path,
    postgres: PostgresServer,
):
    proxy = run_proxy(fake_server.base_url, db_url, verbose=True)
    path = f"/openai/realtime?api-version=2025-04-01-preview&deployment=dep1&api-key={QUERY_KEY}"
    async with connect(
        ws_url(proxy, path),
        additional_headers={"api-key": HEADER_KEY},
        subprotocols=[
            Subprotocol("realtime"),
            Subprotocol(f"openai-insecure-api-key.{SUBPROTOCOL_KEY}"),
        ],
        max_size=None,
    ) as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "instructions": f"the key is {PAYLOAD_KEY}",
                        "client_secret": {"value": SECRET_VALUE},
                    },
                }
            )
        )
        await ws.recv()
        conn_id = fake_server.handshakes[-1].conn_id
        await fake_server.send_raw(
            conn_id,
            json.dumps(
                {
                    "type": "error",
                    "event_id": "event_x",
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "message": f"Incorrect API key provided: {HEADER_KEY}.",
                    },
                }
            ),
        )
        await ws.recv()
    handshake = fake_server.handshakes[-1]
    assert handshake.headers["api-key"] == HEADER_KEY  # the upstream still gets the real key
    assert QUERY_KEY in handshake.path
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics").read()
    assert proxy.stop() == 0

    stored = stored_bytes(db_url, postgres)
    assert b"the key is [REDACTED]" in stored  # the scan sees the recorded payloads
    for key in (HEADER_KEY, SUBPROTOCOL_KEY, QUERY_KEY, PAYLOAD_KEY, SECRET_VALUE):
        assert key.encode() not in stored, key
        assert key not in proxy.log, key
        assert key.encode() not in metrics, key
    (session,) = rows(db_url, RealtimeSession)
    assert session.model == "dep1"
    assert "[REDACTED]" in session.path
    assert session.key_fingerprint is not None

    from rtrec.cli import main

    exported = tmp_path / "export.jsonl"
    assert (
        main(["export", session.id, "--format", "jsonl", "-o", str(exported), "--db", db_url]) == 0
    )
    text = exported.read_text()
    assert len(text.splitlines()) == len(rows(db_url, Event))
    for key in (HEADER_KEY, SUBPROTOCOL_KEY, QUERY_KEY, PAYLOAD_KEY, SECRET_VALUE):
        assert key not in text


async def test_refused_upgrade_makes_no_session_and_is_counted(
    fake_server: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(fake_server.base_url, db_url)
    client = openai.AsyncOpenAI(api_key=REFUSE_UPGRADE_KEY, base_url=proxy.base_url)
    with pytest.raises((InvalidStatus, openai.OpenAIError), match="403"):
        async with client.realtime.connect(model="gpt-realtime"):
            pass
    proxy.wait_for_metric('openai_realtime_upgrade_failures_total{status="403"} 1.0')
    assert proxy.stop() == 0
    assert rows(db_url, RealtimeSession) == []
    assert [f.status for f in rows(db_url, UpgradeFailure)] == [403]


async def test_beta_client_is_recorded_with_beta_names(
    fake_server: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(fake_server.base_url, db_url)
    client = openai.AsyncOpenAI(
        api_key=HEADER_KEY,
        base_url=proxy.base_url,
        websocket_base_url=f"ws://127.0.0.1:{proxy.port}/v1",
    )
    async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        await conn.session.update(session={"modalities": ["text"]})
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            }
        )
        await conn.response.create()
        async for event in conn:
            if event.type == "response.done":
                break
    assert proxy.stop() == 0
    (session,) = rows(db_url, RealtimeSession)
    assert session.api == "beta"
    types = [e.type for e in rows(db_url, Event)]
    assert "response.text.delta" in types
    assert "conversation.item.created" in types


async def test_stock_mitmdump_loads_the_addon(
    fake_server: FakeRealtimeServer, db_url: str, tmp_path: Path
):
    port = free_port()
    mitmdump = Path(sys.executable).with_name("mitmdump")
    args = [
        str(mitmdump),
        "-q",
        "-s",
        str(Path(__file__).parent.parent / "proxy" / "addon.py"),
        "--mode",
        f"reverse:{fake_server.base_url}",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"rtrec_db={db_url}",
        "--set",
        "rtrec_metrics_port=0",
        "--set",
        "rtrec_flush_interval_ms=20",
    ]
    proxy = start_proxy(args, port, 0, tmp_path / "mitmdump.log")
    try:
        client = openai.AsyncOpenAI(api_key=HEADER_KEY, base_url=proxy.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await conn.response.create()
            async for event in conn:
                if event.type == "response.done":
                    break
    finally:
        assert proxy.stop() == 0
    (session,) = rows(db_url, RealtimeSession)
    assert session.model == "gpt-realtime"
    assert "response.done" in [e.type for e in rows(db_url, Event)]


async def test_regular_mode_records_clients_that_use_an_http_proxy(
    fake_server: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(fake_server.base_url, db_url, "--mode", "regular")
    target = f"ws://127.0.0.1:{fake_server.port}/v1/realtime?model=gpt-realtime"
    async with connect(
        target,
        proxy=f"http://127.0.0.1:{proxy.port}",
        additional_headers={"Authorization": f"Bearer {HEADER_KEY}"},
    ) as ws:
        created = json.loads(await ws.recv())
    assert created["type"] == "session.created"
    assert proxy.stop() == 0
    (session,) = rows(db_url, RealtimeSession)
    assert session.upstream == f"http://127.0.0.1:{fake_server.port}"
    assert [e.type for e in rows(db_url, Event)] == ["session.created"]


async def test_unreachable_upstream_is_a_502_a_warning_and_a_count(
    run_proxy: Callable[..., ProxyProcess], db_url: str
):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proxy = run_proxy(closed, db_url)
    client = openai.AsyncOpenAI(api_key="sk-unreachable-test-000", base_url=proxy.base_url)
    with pytest.raises(InvalidStatus, match="502") as refused:
        async with client.realtime.connect(model="gpt-realtime"):
            pass
    response = refused.value.response
    assert response.headers["Content-Type"] == "application/json"
    assert orjson.loads(response.body)["error"]["type"] == "upstream_unreachable"
    proxy.wait_for_metric('openai_realtime_upgrade_failures_total{status="502"} 1.0')
    assert proxy.stop() == 0
    warnings = [line for line in proxy.log.splitlines() if "upstream unreachable" in line]
    assert len(warnings) == 1
    assert "sk-unreachable" not in proxy.log
    assert rows(db_url, RealtimeSession) == []
    (failure,) = rows(db_url, UpgradeFailure)  # the dashboard lists failed attempts
    assert failure.status == 502
    assert "Connect call failed" in failure.reason
    assert failure.path == "/v1/realtime?model=gpt-realtime"


def raw_upgrade(port: int, path: str, key: str) -> tuple[str, dict[str, str], bytes]:
    """A WebSocket upgrade by hand: the status line, headers and body the proxy answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Authorization: Bearer {key}\r\n\r\n".encode()
        )
        answer = b""
        while chunk := client.recv(65536):  # the proxy closes after its answer
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return status, {name.lower(): value for name, value in headers.items()}, body


async def test_unreachable_upstream_answers_an_openai_style_json_error(
    run_proxy: Callable[..., ProxyProcess], db_url: str
):
    port = free_port()  # nothing listens there
    proxy = run_proxy(f"http://127.0.0.1:{port}", db_url)
    key = "sk-unreachable-json-0000000000"
    status, headers, body = await asyncio.to_thread(
        raw_upgrade, proxy.port, "/v1/realtime?model=gpt-realtime", key
    )
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = orjson.loads(body)["error"]
    assert error["type"] == "upstream_unreachable"
    assert error["message"].startswith(f"rtrec could not reach 127.0.0.1:{port}: ")
    assert "Connect call failed" in error["message"]
    assert key not in body.decode()
    assert proxy.stop() == 0
