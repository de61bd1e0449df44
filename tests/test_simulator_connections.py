"""The simulator's connections: API-key checks, refused upgrades, the frame log, start and stop."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as sync_ws_connect

from simulator import FakeRealtimeServer, LoggedMessage, run_in_thread
from tests.support.simulator import (
    validate_server_events,
)


async def test_missing_key_gets_error_then_close_3000() -> None:
    async with FakeRealtimeServer() as server:
        async with ws_connect(server.ws_url + "/realtime?model=gpt-realtime") as ws:
            first = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 3000
            assert ws.close_reason == "invalid_request_error.missing_bearer"
        close = await server.wait_closed(1)
        validate_server_events(server, 1, beta=False)

    assert first["type"] == "error"
    assert first["error"]["type"] == "invalid_request_error"
    assert first["error"]["code"] == "missing_bearer"
    assert close == (3000, "invalid_request_error.missing_bearer", "server")
    assert server.handshakes[0].status == 101


async def test_refused_upgrade_404_and_azure_path() -> None:
    async with FakeRealtimeServer() as server:
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(
                server.ws_url + "/realtime?model=gpt-realtime",
                additional_headers={"Authorization": "Bearer sk-refuse-upgrade"},
            )
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as missing:
            await ws_connect(
                server.ws_url + "/chat/completions",
                additional_headers={"Authorization": "Bearer x"},
            )
        assert missing.value.response.status_code == 404
        azure = f"ws://127.0.0.1:{server.port}/openai/realtime?api-version=2025-04-01-preview&deployment=my-dep"
        async with ws_connect(azure, additional_headers={"api-key": "azure-key"}) as ws:
            created = json.loads(await ws.recv())
        await server.wait_closed(3)

    assert [h.status for h in server.handshakes] == [403, 404, 101]
    assert set(server.closes) == {3}
    assert created["session"]["model"] == "my-dep"
    assert server.handshakes[2].headers["api-key"] == "azure-key"


async def test_log_holds_exact_frames_and_close_records() -> None:
    frames: list[str | bytes] = [
        '{"type": "session.update",   "session": {"type": "realtime", "instructions": "é"}}',
        '{"type":"input_audio_buffer.clear","event_id":"evt_clear"}',
        b'{"type":"input_audio_buffer.clear"}',
    ]
    async with FakeRealtimeServer() as server:
        headers = {"Authorization": "Bearer sk-test"}
        async with ws_connect(
            server.ws_url + "/realtime?model=gpt-realtime", additional_headers=headers
        ) as ws:
            received: list[str | bytes] = [await ws.recv()]
            for frame in frames:
                await ws.send(frame)
                received.append(await ws.recv())
            await server.send_raw(1, "injected text")
            await server.send_raw(1, b"\x01\x02")
            received += [await ws.recv(), await ws.recv()]
            await ws.close(4321, "client says bye")
        assert await server.wait_closed(1) == (4321, "client says bye", "client")

        async with ws_connect(server.ws_url + "/realtime", additional_headers=headers) as ws:
            await ws.recv()
            await server.close_connection(2, 4000, "server says bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4000, "server says bye")
        assert server.closes[2] == (4000, "server says bye", "server")

    client_log = server.messages(1, "client")
    assert [m.data for m in client_log] == frames
    assert [type(m.data) for m in client_log] == [str, str, bytes]
    server_log = server.messages(1, "server")
    assert [m.data for m in server_log] == received
    assert [json.loads(r)["type"] for r in received[1:4] if isinstance(r, str)] == [
        "session.updated",
        "input_audio_buffer.cleared",
        "error",
    ]
    assert server_log[-1].data == b"\x01\x02"
    assert server_log[-1].event is None
    assert all(isinstance(m, LoggedMessage) and m.ts > 0 for m in server.log)
    assert server.messages(direction="server", conn_id=2)[0].event is not None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside the SDK's sync client
def test_run_in_thread_with_sync_clients() -> None:
    with run_in_thread() as server:
        client = openai.OpenAI(api_key="sk-sync", base_url=server.base_url + "/v1")
        with client.realtime.connect(model="gpt-realtime") as conn:
            assert conn.recv().type == "session.created"
            server.call_threadsafe(
                server.send_raw(1, '{"type":"input_audio_buffer.cleared","event_id":"event_x"}')
            )
            assert conn.recv().type == "input_audio_buffer.cleared"
        assert server.call_threadsafe(server.wait_closed(1)) == (1000, "", "client")
        with sync_ws_connect(
            server.ws_url + "/realtime", additional_headers={"Authorization": "Bearer k"}
        ) as ws:
            ws.recv()
            server.call_threadsafe(server.close_connection(2, 1001, "going"))
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                ws.recv()
        assert server.closes[2] == (1001, "going", "server")
    with pytest.raises(RuntimeError):
        FakeRealtimeServer().call_threadsafe(asyncio.sleep(0))


async def test_stop_closes_open_connections_with_1001() -> None:
    server = FakeRealtimeServer()
    await server.start()
    headers = {"Authorization": "Bearer sk-test"}
    async with ws_connect(server.ws_url + "/realtime", additional_headers=headers) as ws:
        await ws.recv()
        await server.stop()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
    assert server.closes[1] == (1001, "", "server")
