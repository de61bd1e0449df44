"""Calls recorded through a real `rtrec proxy` in front of `rtrec simulate`'s call endpoints, for
the dashboard's tests: a Realtime WebRTC call and a GPT-Live SIP call (DTMF both ways, then a
refer), each watched by the application's own sideband through the proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import openai

from simulator.call_server import CallServer
from tests.support.call_recording import sdk
from tests.support.calls import TWO_TURNS, ClientPeer, WebhookReceiver, read_sideband, ring, until
from tests.support.proxy import proxy_runner

REFER_TO = "tel:+15550100"


async def webrtc_call(client: openai.AsyncOpenAI) -> str:
    """A Realtime WebRTC call of two turns, watched by the application's sideband; hung up."""
    peer, events = ClientPeer(), list[dict[str, Any]]()
    try:
        raw = await client.realtime.calls.with_raw_response.create(
            sdp=await peer.offer(), session={"type": "realtime", "model": "gpt-realtime"}
        )
        call_id = raw.headers["location"].rsplit("/", 1)[1]
        async with client.realtime.connect(call_id=call_id) as sideband:
            reader = asyncio.create_task(read_sideband(sideband, events))
            await peer.connect(raw.http_response.text)
            await until(lambda: peer.count("session.created") == 1)
            peer.microphone.play(TWO_TURNS)
            await until(lambda: sum(e["type"] == "response.done" for e in events) == 2)
            await client.realtime.calls.hangup(call_id)
            await asyncio.wait_for(reader, 5)
    finally:
        await peer.close()
    return call_id


async def live_sip_call(client: openai.AsyncOpenAI, server: CallServer) -> str:
    """A GPT-Live SIP call: rung, watched, accepted; the caller presses 1, the application
    sends #, and the call is referred to another number."""
    receiver, events = WebhookReceiver(), list[dict[str, Any]]()
    try:
        call_id = str((await asyncio.to_thread(ring, server, receiver.url, "live"))["call_id"])
        async with client.live.sideband.connect(session_id=call_id, max_retries=0) as sideband:
            reader = asyncio.create_task(read_sideband(sideband, events))
            await until(lambda: bool(server.registry.calls[call_id].sidebands))
            await client.live.sessions.accept(
                call_id, session={"type": "live", "model": "gpt-live-1"}
            )
            await until(lambda: any(e["type"] == "transport.dtmf.received" for e in events))
            await sideband.send(cast(Any, {"type": "transport.dtmf.send", "event": "#"}))
            await until(lambda: any(e["type"] == "transport.dtmf.sent" for e in events))
            await client.live.sessions.refer(call_id, target_uri=REFER_TO)
            await asyncio.wait_for(reader, 5)
    finally:
        receiver.close()
    return call_id


async def record_calls(db_url: str, folder: Path) -> dict[str, str]:
    """Both calls recorded into `db_url`; their ids by kind (`webrtc`, `sip`)."""
    async with CallServer() as server:
        with proxy_runner(folder) as run:
            proxy = run(server.base_url, db_url)
            client = sdk(proxy)
            recorded = {
                "webrtc": await webrtc_call(client),
                "sip": await live_sip_call(client, server),
            }
            assert proxy.stop() == 0
    return recorded
