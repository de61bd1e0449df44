"""GPT-Live sessions recorded through a real proxy, read back as people see them: transcript
turns, delegated work and billing (`analysis.live`), `rtrec export` (JSONL, WAV in PCM16 24 and
16 kHz and G.711) and `rtrec diff` between two GPT-Live sessions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import wave
from typing import Any

import pytest
from sqlalchemy import select

from analysis import diff
from analysis import live as live_view
from storage import detail
from storage.db import make_engine
from storage.models import RealtimeSession, table
from storage.recording import session_summary
from tests.support.live_recording import (
    DECISIONS_DELEGATION,
    LiveScript,
    of_type,
    record_live,
)

SCRIPTS = [
    LiveScript(audio="pcm16", turns=2),
    LiveScript(audio="pcm16", turns=3),
    LiveScript(audio="pcm16_16k", turns=1),
    LiveScript(audio="g711_ulaw", turns=1, delegation=DECISIONS_DELEGATION),
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("live-presentation")
    db_url = f"sqlite:///{folder / 'rtrec.db'}"
    sessions = asyncio.run(record_live(db_url, folder, SCRIPTS))
    return {"db_url": db_url, "sessions": sessions, "folder": folder}


def _read(db_url: str, read: Any, *args: Any) -> Any:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        found = read(connection, *args)
    engine.dispose()
    return found


def _said(sent: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["delta"] for e in of_type(sent, f"session.{kind}_transcript.delta"))


def test_transcript_turns_alternate_and_hold_every_delta(recorded):
    first = recorded["sessions"][1]
    events = _read(recorded["db_url"], detail.live_events, first["session_id"])
    turns = live_view.transcript_turns(events)
    assert [t["role"] for t in turns] == ["user", "assistant"] * 3
    assert [t["number"] for t in turns if t["role"] == "assistant"] == [1, 2, 3]
    assert "".join(t["text"] for t in turns if t["role"] == "user") == _said(first["sent"], "input")
    spoken = "".join(t["text"] for t in turns if t["role"] == "assistant")
    assert spoken == _said(first["sent"], "output")


def test_delegated_work_has_the_simulators_tokens_model_and_target(recorded):
    first = recorded["sessions"][0]
    session_id = first["session_id"]
    events = _read(recorded["db_url"], detail.live_events, session_id)
    responses = _read(recorded["db_url"], detail.session_responses, session_id)
    work = live_view.delegated_work(events, responses)
    completed = [
        e["event"]["response"]
        for e in of_type(first["sent"], "response.event")
        if e["event"]["type"] == "response.completed"
    ]
    assert [(w["kind"], w["target"], w["model"]) for w in work] == [
        ("response", "responses", "gpt-5.4")
    ] * len(completed)
    assert [w["total_tokens"] for w in work] == [c["usage"]["total_tokens"] for c in completed]
    assert all(w["cost_usd"] > 0 for w in work)


def test_decisions_show_their_answers_and_usage(recorded):
    decided = recorded["sessions"][3]
    session_id = decided["session_id"]
    events = _read(recorded["db_url"], detail.live_events, session_id)
    responses = _read(recorded["db_url"], detail.session_responses, session_id)
    sent = [e["event"]["decision"] for e in of_type(decided["sent"], "decision.event")]
    assert [d["answers"] for d in live_view.decisions(events)] == [s["answers"] for s in sent]
    work = live_view.delegated_work(events, responses)
    assert [(w["kind"], w["model"], w["total_tokens"]) for w in work] == [
        ("decision", "gpt-5-mini", s["usage"]["total_tokens"]) for s in sent
    ]


def test_waterfall_has_a_row_per_turn_from_speech_to_first_audio(recorded):
    session_id = recorded["sessions"][1]["session_id"]
    responses = _read(recorded["db_url"], detail.session_responses, session_id)
    rows = live_view.waterfall(responses)
    assert [r["turn"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["speech stopped"] == 0.0
        assert 0 < row["first audio"] <= row["done"]


def test_billing_is_the_closing_usage(recorded):
    first = recorded["sessions"][0]
    session = _read(recorded["db_url"], detail.get_session, first["session_id"])
    (closed,) = of_type(first["sent"], "session.closed")
    billed = live_view.billing(session)
    assert (billed["billable_seconds"], billed["usage_final"], billed["end_reason"]) == (
        closed["usage"]["seconds"],
        True,
        closed["reason"],
    )
    assert billed["seconds_cost_usd"] > 0


def _rtrec(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rtrec.cli", *args], capture_output=True, timeout=120
    )


def test_jsonl_export_has_every_event_of_the_session(recorded, tmp_path):
    session_id = recorded["sessions"][0]["session_id"]
    out = tmp_path / "live.jsonl"
    done = _rtrec(
        "export", session_id, "--format", "jsonl", "-o", str(out), "--db", recorded["db_url"]
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    count = _read(recorded["db_url"], detail.count_events, session_id)
    assert len(lines) == count
    assert {"session.start", "session.closed"} <= {line["type"] for line in lines}


@pytest.mark.parametrize(
    ("index", "format_tag", "rate"), [(0, 1, 24_000), (2, 1, 16_000), (3, 7, 8_000)]
)
def test_wav_export_of_both_tracks_keeps_the_sessions_format(
    recorded, tmp_path, index, format_tag, rate
):
    """PCM16 at 24 and 16 kHz, and G.711 mu-law (format tag 7, which `wave` cannot open)."""
    live = recorded["sessions"][index]
    out = tmp_path / "both.wav"
    done = _rtrec(
        "export", live["session_id"], "--format", "wav", "-o", str(out), "--db", recorded["db_url"]
    )
    assert done.returncode == 0, done.stderr
    header = out.read_bytes()[:44]
    assert int.from_bytes(header[20:22], "little") == format_tag
    assert int.from_bytes(header[22:24], "little") == 2  # both tracks: stereo, user left
    assert int.from_bytes(header[24:28], "little") == rate
    frame_bytes = int.from_bytes(header[32:34], "little")
    assert int.from_bytes(header[40:44], "little") // frame_bytes > rate  # over a second
    if format_tag == 1:
        with wave.open(str(out), "rb") as wav:
            assert (wav.getnchannels(), wav.getframerate()) == (2, rate)


def _summary(db_url: str, index: int, recorded: dict[str, Any]) -> dict[str, Any]:
    return _read(db_url, session_summary, recorded["sessions"][index]["session_id"])


def test_diff_of_two_live_sessions_compares_turns_seconds_and_cost(recorded):
    db_url = recorded["db_url"]
    a, b = _summary(db_url, 0, recorded), _summary(db_url, 1, recorded)
    report = diff.compare(a, b)
    assert report["turns_changed"] is True
    assert report["metrics"]["turns"] == [2, 3]
    assert report["metrics"]["billable_seconds"] == [
        a["session"]["billable_seconds"],
        b["session"]["billable_seconds"],
    ]
    delegated_a = sum(r["cost_usd"] or 0 for r in a["responses"])
    assert report["metrics"]["cost"][0] == pytest.approx(
        a["session"]["seconds_cost_usd"] + delegated_a
    )
    first = report["turns"][0]
    assert first["text"][0] == first["text"][1] != ""
    assert first["voice_to_voice_ms"][0] is not None
    assert report["turns"][2]["only_in"] == "b"


def test_rtrec_diff_prints_the_billed_seconds_of_two_live_sessions(recorded):
    ids = [recorded["sessions"][i]["session_id"] for i in (0, 1)]
    done = _rtrec("diff", *ids, "--db", recorded["db_url"])
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "billable_seconds" in out
    assert "turn 3:" in out


def test_sessions_list_cost_includes_the_billed_seconds(recorded):
    from storage import browse

    first = recorded["sessions"][0]["session_id"]
    session = _read(recorded["db_url"], detail.get_session, first)
    responses = _read(recorded["db_url"], detail.session_responses, first)
    totals = _read(recorded["db_url"], browse.session_totals, [first])[first]
    delegated = sum(r["cost_usd"] or 0 for r in responses)
    assert totals["cost_usd"] == pytest.approx(session["seconds_cost_usd"] + delegated)


def test_every_recorded_session_is_live(recorded):
    engine = make_engine(recorded["db_url"])
    sessions = table(RealtimeSession)
    with engine.connect() as connection:
        apis = list(connection.execute(select(sessions.c.api)).scalars())
    engine.dispose()
    assert apis == ["live"] * len(SCRIPTS)


def test_rtrec_diff_fails_on_billable_seconds_grown_past_a_threshold(recorded):
    """Session B spoke three turns to A's two: more billed seconds than A's plus 10 %."""
    ids = [recorded["sessions"][i]["session_id"] for i in (0, 1)]
    done = _rtrec("diff", *ids, "--db", recorded["db_url"], "--fail-on", "billable_seconds+10%")
    assert done.returncode == 1, done.stderr
    assert b"billable_seconds+10%: billable_seconds" in done.stderr
    same = _rtrec(
        "diff", ids[0], ids[0], "--db", recorded["db_url"], "--fail-on", "billable_seconds+10%"
    )
    assert same.returncode == 0, same.stderr
