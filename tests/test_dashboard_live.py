"""A GPT-Live session in the dashboard (AppTest): listed with Realtime sessions, and its page's
conversation, billing, delegations, latency and audio, on sessions recorded through a real proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.dashboard import record
from tests.support.live_recording import DECISIONS_DELEGATION, LiveScript, of_type, record_live

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A GPT-Live session of two turns, one delegating to Decisions, then a Realtime one, in
    one database of each kind."""
    folder = tmp_path_factory.mktemp("dashboard-live")
    if request.param == "sqlite":
        db_url = f"sqlite:///{folder / 'rtrec.db'}"
    else:
        db_url = request.getfixturevalue("postgres").create_database()
    scripts = [LiveScript(turns=2), LiveScript(turns=1, delegation=DECISIONS_DELEGATION)]
    live, decided = asyncio.run(record_live(db_url, folder, scripts))
    asyncio.run(record(db_url, folder))
    return {"db_url": db_url, **live, "decided": decided}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    def run(db_url: str, session_id: str | None = None, page: str | None = None) -> AppTest:
        monkeypatch.setenv("RTREC_DB", db_url)
        test = AppTest.from_file(APP, default_timeout=30)
        if session_id is not None:
            test.query_params["session"] = session_id
        test.run()
        if page is not None:
            test.switch_page(page).run()
        assert not test.exception, [e.value for e in test.exception]
        return test

    return run


def live_page(app: Any, recorded: dict[str, Any]) -> AppTest:
    return app(recorded["db_url"], recorded["session_id"], "app_pages/session.py")


def metric(test: AppTest, label: str) -> str:
    (found,) = [m.value for m in test.metric if m.label == label]
    return str(found)


def texts(test: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption") for e in getattr(test, kind))


def test_sessions_of_both_apis_are_in_one_list(app, recorded):
    listed = app(recorded["db_url"]).dataframe[0].value
    assert sorted(listed["api"]) == ["ga", "live", "live"]
    (row,) = listed[listed["session"] == recorded["session_id"]].to_dict("records")
    assert row["api"] == "live"
    assert row["model"] == "gpt-live-1"
    assert row["turns"] == 2  # the spoken turns, not the delegated responses


def test_header_counts_turns_and_a_cost_with_the_billed_seconds(app, recorded):
    test = live_page(app, recorded)
    assert metric(test, "Turns (responses)") == "2"
    delegated = sum(
        1
        for e in of_type(recorded["sent"], "response.event")
        if e["event"]["type"] == "response.completed"
    )
    assert delegated > 0
    seconds_cost = float(metric(test, "Seconds cost").lstrip("$"))
    assert float(metric(test, "Cost").lstrip("$")) > seconds_cost > 0


def test_the_conversation_is_the_transcripts_in_turns(app, recorded):
    test = live_page(app, recorded)
    messages = [m for m in test.chat_message if m.name in ("user", "assistant")]
    assert [m.name for m in messages] == ["user", "assistant"] * 2
    said = "".join(e["delta"] for e in of_type(recorded["sent"], "session.output_transcript.delta"))
    shown = "".join(m.text[0].value for m in messages if m.name == "assistant")
    assert shown == said
    assert "turn 2 · " in messages[3].caption[0].value


def test_billing_shows_seconds_cost_and_end_reason(app, recorded):
    test = live_page(app, recorded)
    (closed,) = of_type(recorded["sent"], "session.closed")
    assert metric(test, "Billable seconds") == f"{closed['usage']['seconds']:.1f} s"
    assert f"End reason `{closed['reason']}` · final usage" in texts(test)
    assert metric(test, "Seconds cost").startswith("$")


def test_delegations_show_model_tokens_and_cost(app, recorded):
    test = live_page(app, recorded)
    completed = [
        e["event"]["response"]
        for e in of_type(recorded["sent"], "response.event")
        if e["event"]["type"] == "response.completed"
    ]
    work = next(d.value for d in test.dataframe if "delegation_id" in d.value.columns)
    assert list(work["model"]) == ["gpt-5.4"] * len(completed)
    assert list(work["total_tokens"]) == [c["usage"]["total_tokens"] for c in completed]
    assert (work["cost_usd"] > 0).all()


def test_latency_has_a_row_per_turn(app, recorded):
    test = live_page(app, recorded)
    table = next(d.value for d in test.dataframe if "voice-to-voice" in d.value.columns)
    assert list(table["turn"]) == [1, 2]
    assert all(v.endswith("ms") for v in table["first audio"])


def test_both_audio_tracks_have_players(app, recorded):
    test = live_page(app, recorded)
    captions = [c.value for c in test.caption]
    assert "User audio" in captions
    assert "Assistant audio" in captions
    assert len(test.get("audio")) == 2


def test_a_realtime_session_keeps_its_own_tabs(app, recorded):
    listed = app(recorded["db_url"]).dataframe[0].value
    (realtime,) = listed[listed["api"] == "ga"]["session"]
    test = app(recorded["db_url"], realtime, "app_pages/session.py")
    assert [t.label for t in test.tabs][:2] == ["Conversation", "Usage"]


def test_decisions_show_their_answers_tokens_and_cost(app, recorded):
    decided = recorded["decided"]
    test = app(recorded["db_url"], decided["session_id"], "app_pages/session.py")
    sent = [e["event"]["decision"] for e in of_type(decided["sent"], "decision.event")]
    work = next(d.value for d in test.dataframe if "delegation_id" in d.value.columns)
    assert list(work["kind"]) == ["decision"] * len(sent)
    assert list(work["total_tokens"]) == [s["usage"]["total_tokens"] for s in sent]
    assert (work["cost_usd"] > 0).all()
    answers = next(d.value for d in test.dataframe if "answers" in d.value.columns)
    assert list(answers["model"]) == ["gpt-5-mini"] * len(sent)
    assert sent[0]["answers"][0]["choice"] in answers["answers"][0]
