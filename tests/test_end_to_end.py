"""The official `openai` SDK through a real `rtrec proxy` to the local fake Realtime service.

Every recorded number is compared with the fake service's own log of what it sent and received,
never with the recorder's own tally.
"""

from __future__ import annotations

import base64
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from simulator.server import FakeRealtimeServer
from storage.db import make_engine
from storage.models import Event, RateLimit, RealtimeSession, Response, Transcription, table
from tests.pgserver import PostgresServer
from tests.support.audio import SAMPLE_RATE, sine_pcm16
from tests.support.conversation import KEY, run_conversation
from tests.support.proxy import ProxyProcess, event_of, proxy_runner, stored_bytes


def query(db_url: str, model: type) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        t = table(model)
        order = t.c.seq if "seq" in t.c else t.c.id
        rows = list(connection.execute(select(t).order_by(order)))
    engine.dispose()
    return rows


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per run of this module: it runs once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'rtrec.db'}"
    return str(request.getfixturevalue("postgres").create_database())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """One conversation through the proxy, recorded once for every test in this module."""
    # Paced deltas, so that a response.cancel lands while the response is still running.
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        with proxy_runner(tmp_path_factory.mktemp("proxy")) as run_proxy:
            proxy = run_proxy(server.base_url, db_url, verbose=True)
            sent: list[str] = []
            received: list[bytes] = []
            await run_conversation(proxy.base_url, sent, received)
            assert proxy.stop() == 0
        yield {"proxy": proxy, "server": server, "sent": sent, "received": received}


async def test_frames_cross_the_proxy_byte_identical(recorded: dict[str, Any]):
    server: FakeRealtimeServer = recorded["server"]
    got_by_server = [m.data for m in server.messages(direction="client")]
    sent_by_server = [m.data for m in server.messages(direction="server")]
    assert got_by_server == recorded["sent"]
    received = recorded["received"]
    assert [
        d.encode() if isinstance(d, str) else d for d in sent_by_server[: len(received)]
    ] == received


async def test_every_message_is_an_event_in_arrival_order(recorded: dict[str, Any], db_url: str):
    server: FakeRealtimeServer = recorded["server"]
    events = query(db_url, Event)
    assert [e.seq for e in events] == list(range(len(events)))
    for direction in ("client", "server"):
        logged = server.messages(direction=direction)
        rows = [e for e in events if e.direction == direction]
        assert [r.type for r in rows] == [event_of(m)["type"] for m in logged]
        assert [r.size_bytes for r in rows] == [
            len(m.data.encode() if isinstance(m.data, str) else m.data) for m in logged
        ]
        assert [r.event_id for r in rows] == [event_of(m).get("event_id") for m in logged]


async def test_session_row_matches_the_server(recorded: dict[str, Any], db_url: str):
    server: FakeRealtimeServer = recorded["server"]
    (session,) = query(db_url, RealtimeSession)
    created = next(
        event_of(m)
        for m in server.messages(direction="server")
        if event_of(m)["type"] == "session.created"
    )
    assert session.model == created["session"]["model"]
    assert session.openai_session_id == created["session"]["id"]
    assert session.api == "ga"
    assert session.path == "/v1/realtime?model=gpt-realtime"
    code, _reason, closed_by = next(iter(server.closes.values()))
    assert (session.close_code, session.closed_by) == (code, closed_by)
    assert session.ended_at is not None


async def test_responses_hold_the_usage_the_server_sent(recorded: dict[str, Any], db_url: str):
    server: FakeRealtimeServer = recorded["server"]
    done = [
        event_of(m)["response"]
        for m in server.messages(direction="server")
        if event_of(m)["type"] == "response.done"
    ]
    rows = {r.response_id: r for r in query(db_url, Response)}
    assert sorted(rows) == sorted(r["id"] for r in done)
    assert [r["status"] for r in done] == ["completed", "completed", "cancelled"]
    for response in done:
        row = rows[response["id"]]
        usage = response["usage"]
        itd, otd = usage["input_token_details"], usage["output_token_details"]
        assert (row.status, row.status_reason) == (
            response["status"],
            (response.get("status_details") or {}).get("reason"),
        )
        assert (row.input_tokens, row.output_tokens, row.total_tokens) == (
            usage["input_tokens"],
            usage["output_tokens"],
            usage["total_tokens"],
        )
        assert (row.input_text_tokens, row.input_audio_tokens, row.cached_tokens) == (
            itd["text_tokens"],
            itd["audio_tokens"],
            itd["cached_tokens"],
        )
        assert (row.cached_text_tokens, row.cached_audio_tokens) == (
            itd["cached_tokens_details"]["text_tokens"],
            itd["cached_tokens_details"]["audio_tokens"],
        )
        assert (row.output_text_tokens, row.output_audio_tokens) == (
            otd["text_tokens"],
            otd["audio_tokens"],
        )
        assert row.created_at is not None
        assert row.done_at >= row.created_at
    voice = rows[done[1]["id"]]
    assert voice.time_to_first_audio_ms is not None
    assert voice.time_to_first_audio_ms >= 0


async def test_rate_limits_and_transcriptions_match(recorded: dict[str, Any], db_url: str):
    server: FakeRealtimeServer = recorded["server"]
    sent = [event_of(m) for m in server.messages(direction="server")]
    limits = [
        (e["name"], e["limit"], e["remaining"], e["reset_seconds"])
        for ev in sent
        if ev["type"] == "rate_limits.updated"
        for e in ev["rate_limits"]
    ]
    rows = query(db_url, RateLimit)
    assert [(r.name, r.limit_value, r.remaining, r.reset_seconds) for r in rows] == limits
    completed = [
        ev for ev in sent if ev["type"] == "conversation.item.input_audio_transcription.completed"
    ]
    transcriptions = query(db_url, Transcription)
    assert len(transcriptions) == len(completed) == 1
    usage = completed[0]["usage"]
    row = transcriptions[0]
    assert (row.item_id, row.transcript, row.model, row.usage_type) == (
        completed[0]["item_id"],
        completed[0]["transcript"],
        "gpt-4o-mini-transcribe",
        usage["type"],
    )
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
        usage["total_tokens"],
    )


async def test_errors_are_recorded_with_type_and_code(recorded: dict[str, Any], db_url: str):
    server: FakeRealtimeServer = recorded["server"]
    errors = [
        event_of(m)["error"]
        for m in server.messages(direction="server")
        if event_of(m)["type"] == "error"
    ]
    rows = [e for e in query(db_url, Event) if e.type == "error"]
    assert [(r.error_type, r.error_code) for r in rows] == [
        (e["type"], e.get("code")) for e in errors
    ]
    assert rows[-1].payload["error"]["event_id"] == "evt_bad_1"


async def test_audio_payloads_keep_byte_counts(recorded: dict[str, Any], db_url: str):
    events = query(db_url, Event)
    appends = [e for e in events if e.type == "input_audio_buffer.append"]
    assert sum(e.payload["audio"] for e in appends) == len(sine_pcm16(1200))
    deltas = [e for e in events if e.type == "response.output_audio.delta"]
    assert deltas
    assert all(isinstance(e.payload["delta"], int) for e in deltas)
    assert all("obfuscation" not in e.payload for e in events if e.payload)


async def test_wav_export_has_each_sides_rate_and_length(
    recorded: dict[str, Any], db_url: str, tmp_path: Path
):
    server: FakeRealtimeServer = recorded["server"]
    session_id = query(db_url, RealtimeSession)[0].id
    assistant_bytes = sum(
        len(base64.b64decode(event_of(m)["delta"]))
        for m in server.messages(direction="server")
        if event_of(m)["type"] == "response.output_audio.delta"
    )
    expected_ms = {"user": 1200, "assistant": assistant_bytes / 48}
    for side, ms in expected_ms.items():
        out = tmp_path / f"{side}.wav"
        from rtrec.cli import main

        assert (
            main(
                [
                    "export",
                    session_id,
                    "--format",
                    "wav",
                    "--side",
                    side,
                    "-o",
                    str(out),
                    "--db",
                    db_url,
                ]
            )
            == 0
        )
        with wave.open(str(out)) as wav:
            assert wav.getframerate() == SAMPLE_RATE
            assert abs(wav.getnframes() / SAMPLE_RATE * 1000 - ms) <= 20


async def test_planted_key_is_nowhere_in_storage_or_logs(
    recorded: dict[str, Any], db_url: str, postgres: PostgresServer
):
    proxy: ProxyProcess = recorded["proxy"]
    stored = stored_bytes(db_url, postgres)
    assert b"never reveal" in stored  # the scan sees the recorded payloads
    assert KEY.encode() not in stored
    assert KEY not in proxy.log
    assert "DEBUG" in proxy.log  # the log was written at debug level
