"""GPT-Live WebRTC calls of `rtrec simulate` through a real `rtrec proxy`: an aiortc peer talks,
the call is watched by the application's sideband (`/attach`), by rtrec's observer, or by both."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from simulator.call_server import CallServer
from storage.models import AudioChunk, Call, Event, RealtimeSession
from tests.support.call_recording import (
    APP_KEY,
    OBSERVER_KEY,
    fresh_db,
    rows,
    rung_with_observer,
    sdk,
    wait_closed,
)
from tests.support.calls import (
    TWO_TURNS,
    ClientPeer,
    read_sideband,
    until,
)
from tests.support.proxy import ProxyProcess, proxy_runner

pytestmark = pytest.mark.asyncio(loop_scope="module")
LIVE_COST = 'openai_realtime_cost_usd_total{api="live",kind="session_seconds",model="gpt-live-1"}'


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_param(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def live_call(server: CallServer, proxy: ProxyProcess, observe: bool) -> dict[str, Any]:
    """Create a GPT-Live call through the proxy, attach the application's sideband (and, when
    `observe`, cut the observer's once and wait for it to attach again), talk two turns, hang
    up; what the application's sideband saw."""
    client, peer = sdk(proxy), ClientPeer()
    seen: list[dict[str, Any]] = []
    try:
        created = await client.live.create(
            session={"model": "gpt-live-1"},
            transport={"type": "webrtc", "sdp": await peer.offer()},
        )
        call_id = created.session.id
        call = server.registry.calls[call_id]
        async with client.live.sideband.connect(session_id=call_id) as sideband:
            reader = asyncio.create_task(read_sideband(sideband, seen))
            await until(lambda: len(call.sidebands) == (2 if observe else 1))
            if observe:
                await cut_observer(call)
            await talk(peer, str(created.transport.sdp))
            await client.live.sessions.hangup(call_id)
            await asyncio.wait_for(reader, 10)
    finally:
        await peer.close()
    return {"call_id": call_id, "sideband_events": seen}


async def cut_observer(call: Any) -> None:
    """Drop the observer's sideband without a close frame; wait until it is attached again."""
    (observer,) = [
        send
        for send in call.sidebands
        if OBSERVER_KEY in send.__self__.request.headers["Authorization"]
    ]
    observer.__self__.transport.abort()
    await until(lambda: observer not in call.sidebands)
    await until(lambda: len(call.sidebands) == 2)


async def talk(peer: ClientPeer, answer: str) -> None:
    """Two caller turns; each is over once its usage update follows the answer."""
    await peer.connect(answer)
    await until(lambda: peer.count("session.started") == 1)
    peer.microphone.play(TWO_TURNS)
    await until(lambda: peer.count("session.usage.updated") >= 2, timeout=30)


async def record_call(
    db_param: str, request: pytest.FixtureRequest, tmp: Path, observe: bool
) -> dict[str, Any]:
    """One GPT-Live call through a proxy of its own; the recording once every session closed."""
    db_url = fresh_db(db_param, request, tmp)
    options = ("--observe-calls", "on") if observe else ()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTREC_OBSERVER_API_KEY", OBSERVER_KEY)
        async with CallServer() as server:
            with proxy_runner(tmp) as run:
                proxy = run(server.base_url, db_url, *options)
                call = await live_call(server, proxy, observe)
                # The observer's two connections (one cut), and the application's.
                await wait_closed(db_url, call["call_id"], sessions=3 if observe else 1)
                metrics = proxy.wait_for_metric(LIVE_COST)
                assert proxy.stop() == 0
    return {**call, "db_url": db_url, "proxy": proxy, "metrics": metrics, "tmp": tmp}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def observed_twice(
    db_param: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """A GPT-Live call watched by rtrec's observer (cut once) and the application's sideband."""
    tmp = tmp_path_factory.mktemp("live-twice")
    yield await record_call(db_param, request, tmp, observe=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_sideband_only(
    db_param: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """The same call without the observer: the application's sideband through the proxy."""
    tmp = tmp_path_factory.mktemp("live-app")
    yield await record_call(db_param, request, tmp, observe=False)


def export_wav(db_url: str, session_id: str, out: Path) -> wave.Wave_read:
    command = [sys.executable, "-m", "rtrec.cli", "export", session_id, "--format", "wav"]
    result = subprocess.run(
        [*command, "--side", "both", "-o", str(out), "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return wave.open(str(out))


def assert_recorded_like_a_live_session(db_url: str, session: dict[str, Any], out: Path) -> None:
    """A call's sideband session: transcripts, final usage and cost, both audio tracks."""
    assert (session["api"], session["model"]) == ("live", "gpt-live-1")
    types = {e["type"] for e in rows(db_url, Event, session_id=session["id"])}
    assert {
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.input_audio.append",
        "session.output_audio.delta",
        "session.closed",
    } <= types
    directions = {c["direction"] for c in rows(db_url, AudioChunk, session_id=session["id"])}
    assert directions == {"client", "server"}
    with export_wav(db_url, session["id"], out) as wav:  # user left, assistant right
        assert (wav.getnchannels(), wav.getframerate()) == (2, 24_000)
        assert wav.getnframes() > 24_000  # more than a second of the conversation


def assert_call_ended_with_audio(db_url: str, call_id: str) -> None:
    (call,) = rows(db_url, Call, id=call_id)
    assert (call["api"], call["transport"], call["model"]) == ("live", "webrtc", "gpt-live-1")
    assert (call["status"], call["end_reason"], call["audio_recorded"]) == (
        "ended",
        "hung up",
        True,
    )


async def test_an_application_sideband_records_the_live_call(app_sideband_only):
    db_url, call_id = app_sideband_only["db_url"], app_sideband_only["call_id"]
    (session,) = rows(db_url, RealtimeSession, call_id=call_id)
    assert session["call_role"] == "sideband"
    assert_recorded_like_a_live_session(db_url, session, app_sideband_only["tmp"] / "app.wav")
    (closed,) = [e for e in app_sideband_only["sideband_events"] if e["type"] == "session.closed"]
    assert session["billable_seconds"] == closed["usage"]["seconds"] > 0
    assert session["seconds_cost_usd"] > 0
    assert (session["usage_final"], session["end_reason"]) == (True, "remote_hangup")
    assert_call_ended_with_audio(db_url, call_id)
    assert APP_KEY not in app_sideband_only["proxy"].log


async def test_the_observer_records_the_live_call(observed_twice):
    db_url, call_id = observed_twice["db_url"], observed_twice["call_id"]
    sessions = rows(db_url, RealtimeSession, call_id=call_id)
    roles = sorted(s["call_role"] for s in sessions)
    assert roles == ["observer", "observer", "sideband"]
    observer = [s for s in sessions if s["call_role"] == "observer"][-1]  # the one that talked
    assert_recorded_like_a_live_session(db_url, observer, observed_twice["tmp"] / "observer.wav")
    assert observer["end_reason"] == "remote_hangup"
    assert_call_ended_with_audio(db_url, call_id)
    assert OBSERVER_KEY not in observed_twice["proxy"].log


async def test_a_dropped_live_observer_sideband_is_attached_again(observed_twice):
    db_url, call_id = observed_twice["db_url"], observed_twice["call_id"]
    sessions = rows(db_url, RealtimeSession, call_id=call_id)
    cut, again = [s for s in sessions if s["call_role"] == "observer"]
    assert cut["close_code"] != 1000  # cut, not closed
    assert cut["ended_at"] <= again["started_at"]
    assert (again["api"], again["model"]) == ("live", "gpt-live-1")
    assert again["close_reason"] == "call ended"  # by rtrec, at the hangup


async def test_a_live_call_observed_twice_counts_its_seconds_once(observed_twice):
    db_url, call_id = observed_twice["db_url"], observed_twice["call_id"]
    sessions = rows(db_url, RealtimeSession, call_id=call_id)
    (closed,) = [e for e in observed_twice["sideband_events"] if e["type"] == "session.closed"]
    billed = [s for s in sessions if s["seconds_cost_usd"] is not None]
    assert len(billed) == 1  # the call's seconds, kept on one of its sessions
    assert billed[0]["billable_seconds"] == closed["usage"]["seconds"] > 0
    cost = billed[0]["seconds_cost_usd"]
    assert cost == pytest.approx(closed["usage"]["seconds"] * 0.05 / 60)
    metrics = observed_twice["metrics"].splitlines()
    counted = [line for line in metrics if line.startswith(LIVE_COST)]
    assert [float(line.rsplit(" ", 1)[1]) for line in counted] == [pytest.approx(cost)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def observed_sip(
    db_param: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """A GPT-Live SIP call rung by the simulator, accepted through rtrec with the observer on,
    talked over by the caller, hung up; no sideband of the application's."""
    tmp = tmp_path_factory.mktemp("live-sip")
    db_url = fresh_db(db_param, request, tmp)
    async with rung_with_observer(db_url, tmp, "live") as rung:
        call_id, client, proxy = rung.call_id, sdk(rung.proxy), rung.proxy
        await client.live.sessions.accept(call_id, session={"type": "live", "model": "gpt-live-1"})

        def heard() -> bool:
            found = rows(db_url, RealtimeSession, call_id=call_id)
            return any(
                e["type"] == "session.output_transcript.delta"
                for s in found
                for e in rows(db_url, Event, session_id=s["id"])
            )

        await until(heard, timeout=30)
        await client.live.sessions.hangup(call_id)
        await wait_closed(db_url, call_id, sessions=1)
        assert proxy.stop() == 0
    yield {"db_url": db_url, "call_id": call_id, "proxy": proxy, "tmp": tmp}


async def test_the_observer_records_a_live_sip_call(observed_sip):
    db_url, call_id = observed_sip["db_url"], observed_sip["call_id"]
    (call,) = rows(db_url, Call, id=call_id)
    assert (call["api"], call["transport"], call["model"]) == ("live", "sip", "gpt-live-1")
    assert (call["status"], call["end_reason"]) == ("ended", "hung up")
    assert call["answered_at"] is not None
    (session,) = rows(db_url, RealtimeSession, call_id=call_id)
    assert (session["call_role"], session["api"], session["model"]) == (
        "observer",
        "live",
        "gpt-live-1",
    )
    assert session["billable_seconds"] > 0
    assert session["seconds_cost_usd"] > 0
    assert OBSERVER_KEY not in observed_sip["proxy"].log
