"""WebRTC and SIP calls of `rtrec simulate` through a real `rtrec proxy`: an aiortc peer talks,
the call is watched by the application's sideband, by rtrec's own observer, or by both."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from simulator.call_server import CallServer
from storage.models import AudioChunk, Call, CallEvent, Event, RealtimeSession, Response
from tests.support.call_recording import (
    APP_KEY,
    OBSERVER_KEY,
    fresh_db,
    rows,
    rung_with_observer,
    sdk,
    wait_closed,
)
from tests.support.calls import TWO_TURNS, ClientPeer, read_sideband, until
from tests.support.proxy import ProxyProcess, proxy_runner

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_param(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def webrtc_call(proxy: ProxyProcess, app_sideband: bool) -> dict[str, Any]:
    """Create a call through the proxy, talk two turns, hang up; what the peer saw."""
    client, peer = sdk(proxy), ClientPeer()
    sideband_events: list[dict[str, Any]] = []
    try:
        raw = await client.realtime.calls.with_raw_response.create(
            sdp=await peer.offer(), session={"type": "realtime", "model": "gpt-realtime"}
        )
        call_id = raw.headers["location"].rsplit("/", 1)[1]
        if app_sideband:
            async with client.realtime.connect(call_id=call_id) as sideband:
                reader = asyncio.create_task(read_sideband(sideband, sideband_events))
                await talk(peer, raw.http_response.text)
                await until(lambda: sum(e["type"] == "response.done" for e in sideband_events) == 2)
                await client.realtime.calls.hangup(call_id)
                await asyncio.wait_for(reader, 5)
        else:
            await talk(peer, raw.http_response.text)
            await client.realtime.calls.hangup(call_id)
    finally:
        await peer.close()
    done = [e for e in peer.events if e["type"] == "response.done"]
    return {"call_id": call_id, "responses": done, "peer": peer}


async def talk(peer: ClientPeer, answer: str) -> None:
    await peer.connect(answer)
    await until(lambda: peer.count("session.created") == 1)
    peer.microphone.play(TWO_TURNS)
    await until(lambda: peer.count("response.done") == 2)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def observed_twice(
    db_param: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """A WebRTC call watched by rtrec's observer and by the application's own sideband."""
    tmp = tmp_path_factory.mktemp("twice")
    db_url = fresh_db(db_param, request, tmp)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTREC_OBSERVER_API_KEY", OBSERVER_KEY)
        async with CallServer() as server:
            with proxy_runner(tmp) as run:
                proxy = run(server.base_url, db_url, "--observe-calls", "on")
                call = await webrtc_call(proxy, app_sideband=True)
                await wait_closed(db_url, call["call_id"], sessions=2)
                assert proxy.stop() == 0
    yield {**call, "db_url": db_url, "proxy": proxy}


def usage_rows(db_url: str, session_ids: list[str]) -> list[dict[str, Any]]:
    return [r for s in session_ids for r in rows(db_url, Response, session_id=s)]


async def test_both_connections_of_a_call_are_recorded_and_linked(observed_twice):
    db_url, call_id = observed_twice["db_url"], observed_twice["call_id"]
    sessions = rows(db_url, RealtimeSession, call_id=call_id)
    assert sorted(s["call_role"] for s in sessions) == ["observer", "sideband"]
    for session in sessions:
        types = {e["type"] for e in rows(db_url, Event, session_id=session["id"])}
        assert {
            "response.done",
            "response.output_audio_transcript.done",
        } <= types
    call = rows(db_url, Call, id=call_id)[0]
    assert (call["transport"], call["status"], call["end_reason"]) == ("webrtc", "ended", "hung up")


async def test_a_call_observed_twice_counts_its_usage_and_cost_once(observed_twice):
    db_url = observed_twice["db_url"]
    sessions = rows(db_url, RealtimeSession, call_id=observed_twice["call_id"])
    responses = usage_rows(db_url, [s["id"] for s in sessions])
    sent = {r["response"]["id"]: r["response"]["usage"] for r in observed_twice["responses"]}
    assert len(responses) == 2 * len(sent)  # each response seen on both connections
    counted = [r for r in responses if r["total_tokens"] is not None]
    assert sorted(r["response_id"] for r in counted) == sorted(sent)
    for row in counted:
        assert row["total_tokens"] == sent[row["response_id"]]["total_tokens"]
        assert row["cost_usd"] > 0
    assert all(r["cost_usd"] is None for r in responses if r["total_tokens"] is None)
    text = observed_twice["proxy"].log
    assert OBSERVER_KEY not in text
    assert APP_KEY not in text


async def test_a_sideband_without_audio_leaves_the_call_without_audio(observed_twice, tmp_path):
    db_url, call_id = observed_twice["db_url"], observed_twice["call_id"]
    sessions = rows(db_url, RealtimeSession, call_id=call_id)
    assert all(not rows(db_url, AudioChunk, session_id=s["id"]) for s in sessions)
    assert rows(db_url, Call, id=call_id)[0]["audio_recorded"] is False
    command = [sys.executable, "-m", "rtrec.cli", "export", sessions[0]["id"], "--format", "wav"]
    result = subprocess.run(
        [*command, "--db", db_url], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode != 0
    assert f"watched call {call_id} over a sideband, which carries no audio" in result.stderr
    assert not list(tmp_path.iterdir())  # no file that would claim audio


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_sideband_only(
    db_param: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """The same call without the observer: the application's sideband through the proxy."""
    tmp = tmp_path_factory.mktemp("app")
    db_url = fresh_db(db_param, request, tmp)
    async with CallServer() as server:
        with proxy_runner(tmp) as run:
            proxy = run(server.base_url, db_url)
            call = await webrtc_call(proxy, app_sideband=True)
            await wait_closed(db_url, call["call_id"], sessions=1)
            assert proxy.stop() == 0
    yield {**call, "db_url": db_url}


async def test_an_application_sideband_alone_records_the_call(app_sideband_only):
    db_url, call_id = app_sideband_only["db_url"], app_sideband_only["call_id"]
    (session,) = rows(db_url, RealtimeSession, call_id=call_id)
    assert session["call_role"] == "sideband"
    responses = usage_rows(db_url, [session["id"]])
    sent = {r["response"]["id"]: r["response"]["usage"] for r in app_sideband_only["responses"]}
    assert {r["response_id"]: r["total_tokens"] for r in responses} == {
        k: v["total_tokens"] for k, v in sent.items()
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sip_call(
    db_param: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """A simulated SIP call: signed webhook, accepted through rtrec, observer on, hung up."""
    tmp = tmp_path_factory.mktemp("sip")
    db_url = fresh_db(db_param, request, tmp)
    async with rung_with_observer(db_url, tmp) as rung:
        call_id, client = rung.call_id, sdk(rung.proxy)
        await client.realtime.calls.accept(call_id, type="realtime", model="gpt-realtime")

        def answered() -> int:
            found = rows(db_url, RealtimeSession, call_id=call_id)
            return sum(len(rows(db_url, Response, session_id=s["id"])) for s in found)

        await until(lambda: answered() >= 2, timeout=30)
        await client.realtime.calls.hangup(call_id)
        await wait_closed(db_url, call_id, sessions=1)
        assert rung.proxy.stop() == 0
    yield {"db_url": db_url, "call_id": call_id}


async def test_a_sip_call_is_recorded_through_the_observer(sip_call):
    db_url, call_id = sip_call["db_url"], sip_call["call_id"]
    call = rows(db_url, Call, id=call_id)[0]
    assert (call["transport"], call["model"], call["end_reason"]) == (
        "sip",
        "gpt-realtime",
        "hung up",
    )
    assert call["answered_at"] is not None
    assert call["ended_at"] is not None
    kinds = [e["kind"] for e in rows(db_url, CallEvent, call_id=call_id)]
    assert kinds == ["accepted", "hung_up"]
    (session,) = rows(db_url, RealtimeSession, call_id=call_id)
    assert session["call_role"] == "observer"
    types = [e["type"] for e in rows(db_url, Event, session_id=session["id"])]
    assert (
        "conversation.item.input_audio_transcription.completed" in types or "response.done" in types
    )
    assert all(e["direction"] == "server" for e in rows(db_url, Event, session_id=session["id"]))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dropped_sideband(
    db_param: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """A WebRTC call whose observer sideband is cut (no close frame) before the caller talks."""
    tmp = tmp_path_factory.mktemp("dropped")
    db_url = fresh_db(db_param, request, tmp)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTREC_OBSERVER_API_KEY", OBSERVER_KEY)
        async with CallServer() as server:
            with proxy_runner(tmp) as run:
                proxy = run(server.base_url, db_url, "--observe-calls", "on")
                client, peer = sdk(proxy), ClientPeer()
                try:
                    raw = await client.realtime.calls.with_raw_response.create(
                        sdp=await peer.offer(),
                        session={"type": "realtime", "model": "gpt-realtime"},
                    )
                    call_id = raw.headers["location"].rsplit("/", 1)[1]
                    call = server.registry.calls[call_id]
                    await until(lambda: len(call.sidebands) == 1)
                    (listener,) = call.sidebands
                    listener.__self__.transport.abort()  # type: ignore[attr-defined]
                    await until(lambda: len(rows(db_url, RealtimeSession, call_id=call_id)) == 2)
                    await until(lambda: len(call.sidebands) == 1)
                    await talk(peer, raw.http_response.text)
                    await client.realtime.calls.hangup(call_id)
                finally:
                    await peer.close()
                await wait_closed(db_url, call_id, sessions=2)
                assert proxy.stop() == 0
    yield {"db_url": db_url, "call_id": call_id, "proxy": proxy}


async def test_a_dropped_observer_sideband_is_attached_again(dropped_sideband):
    db_url, call_id = dropped_sideband["db_url"], dropped_sideband["call_id"]
    first, second = rows(db_url, RealtimeSession, call_id=call_id)
    assert first["call_role"] == second["call_role"] == "observer"
    assert first["close_code"] != 1000  # cut, not closed
    responses = rows(db_url, Response, session_id=second["id"])
    assert len(responses) == 2
    assert all(r["total_tokens"] for r in responses)
    assert rows(db_url, Call, id=call_id)[0]["end_reason"] == "hung up"
