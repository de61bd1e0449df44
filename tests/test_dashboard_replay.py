"""Dashboard pages over the beta and GA example traffic, stored by the real recorder and writer."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Element, Node

from protocol.pricing import PriceTable
from recorder.session import SessionRecorder
from storage.models import Response, table
from storage.records import SessionOpened
from storage.writer import Writer
from tests.support.fixtures import FIXTURES_DIR

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
START = datetime.now(UTC).replace(microsecond=0).timestamp() - 3600
SESSION_STARTS = ("session.created", "transcription_session.created")


def fixture_sessions(name: str) -> list[list[dict[str, Any]]]:
    """The fixture file's lines cut into one list per connection (at each `session.created`)."""
    sessions: list[list[dict[str, Any]]] = []
    for line in (FIXTURES_DIR / name).read_text().splitlines():
        message = json.loads(line)
        if message["direction"] == "server" and message["event"]["type"] in SESSION_STARTS:
            sessions.append([])
        sessions[-1].append(message)
    return sessions


def replay(
    writer: Writer,
    session_id: str,
    messages: list[dict[str, Any]],
    minute: int,
    *,
    api: str = "ga",
    closed: bool = True,
    **recorder: Any,
) -> None:
    """One connection's messages through the proxy's recorder, 50 ms apart, into the writer;
    sessions start `minute` minutes apart."""
    started = START + minute * 60
    opened = SessionOpened(
        session_id,
        datetime.fromtimestamp(started, UTC),
        api,
        "/v1/realtime?model=gpt-realtime",
        recorder.pop("record_mode", "full"),
        model="gpt-realtime",
    )
    state = SessionRecorder(opened, record_mode=opened.record_mode, **recorder)
    writer.submit([opened])
    for index, message in enumerate(messages):
        content = json.dumps(message["event"]).encode()
        writer.submit(
            state.on_message(
                message["direction"] == "client", content, True, started + index * 0.05
            )
        )
    if closed:
        writer.submit([state.close(started + len(messages) * 0.05, 1000, "", "client")])


@pytest.fixture
def replayed(engine: Engine, db_url: str) -> str:
    """GA and beta example sessions: priced, unpriced, metadata-only and one still open."""
    writer = Writer(engine, flush_interval_s=0.02)
    writer.start()
    ga, beta = fixture_sessions("ga.jsonl"), fixture_sessions("beta.jsonl")
    replay(writer, "ga-text", ga[0], 0)
    replay(writer, "ga-voice", ga[1], 1)
    replay(writer, "beta-voice", beta[1], 2, api="beta", prices=PriceTable({}))
    replay(writer, "ga-metadata", ga[1], 3, record_mode="metadata")
    replay(writer, "ga-live", ga[0][:10], 4, closed=False)
    writer.close()
    return db_url


def element(node: Node) -> Element:
    """A node `AppTest.get` found, as the element it is (AppTest has no typed accessor for it)."""
    assert isinstance(node, Element), node
    return node


def page(monkeypatch: pytest.MonkeyPatch, db_url: str, session_id: str | None = None) -> AppTest:
    monkeypatch.setenv("RTREC_DB", db_url)
    test = AppTest.from_file(APP, default_timeout=30)
    if session_id is not None:
        test.query_params["session"] = session_id
    test.run()
    assert not test.exception, [e.value for e in test.exception]
    return test


def turns(test: AppTest) -> list[tuple[str, str, str]]:
    """(role, markdown and text, caption) of each turn on the conversation tab."""
    return [
        (
            m.name,
            "\n".join(x.value for x in [*m.markdown, *m.text]),
            "\n".join(x.value for x in m.caption),
        )
        for m in test.chat_message
    ]


def test_barge_in_failure_and_errors_are_marked(monkeypatch: pytest.MonkeyPatch, replayed: str):
    shown = turns(page(monkeypatch, replayed, "ga-voice"))
    answers = [(text, caption) for role, text, caption in shown if role == "assistant"]
    assert "It's cold and dusty" in answers[0][0]
    assert ":orange-badge[barge-in (turn_detected)]" in answers[1][0]
    assert "Once upon a time" in answers[1][0]
    assert ":red-badge[failed]" in answers[2][0]
    assert "tokens —" in answers[2][1]
    assert "cost —" in answers[2][1]
    errors = [text for role, text, _ in shown if role == "error"]
    assert ["`cannot_update_voice`" in errors[0], "`response_cancel_not_active`" in errors[1]] == [
        True,
        True,
    ]


def test_voice_turns_have_players_for_both_sides(monkeypatch: pytest.MonkeyPatch, replayed: str):
    test = page(monkeypatch, replayed, "ga-voice")
    user_turns = [t for t in test.chat_message if t.name == "user"]
    assert user_turns
    players = test.get("audio")
    assert len(players) >= 2  # the user's speech and the spoken answers
    assert [element(d).label for d in test.get("download_button")] == [
        "Events (JSONL)",
        "Audio, both sides (WAV)",
        "User audio (WAV)",
        "Assistant audio (WAV)",
    ]


def test_beta_transcripts_and_unknown_cost(monkeypatch: pytest.MonkeyPatch, replayed: str):
    test = page(monkeypatch, replayed, "beta-voice")
    shown = turns(test)
    users = [text for role, text, _ in shown if role == "user"]
    answers = [(text, caption) for role, text, caption in shown if role == "assistant"]
    assert any(text.strip() for text in users)
    assert ":gray-badge[cancelled by the client]" in answers[-1][0]
    assert all("cost —" in caption for _, caption in answers)
    assert {m.label: m.value for m in test.metric}["Cost"] == "—"


def test_metadata_only_sessions_still_have_turns(monkeypatch: pytest.MonkeyPatch, replayed: str):
    shown = turns(page(monkeypatch, replayed, "ga-metadata"))
    assert [role for role, _, _ in shown].count("assistant") == 3
    assert "_(no text recorded)_" in shown[0][1]


def test_open_session_is_live(monkeypatch: pytest.MonkeyPatch, replayed: str):
    listed = page(monkeypatch, replayed).dataframe[0].value
    status = dict(zip(listed["session"], listed["status"], strict=True))
    assert status["ga-live"] == "● live"
    assert status["ga-text"] == "closed"
    detail = page(monkeypatch, replayed, "ga-live")
    assert ":green-badge[● live]" in detail.markdown[0].value


def test_timeline_folds_deltas_until_asked(monkeypatch: pytest.MonkeyPatch, replayed: str):
    test = page(monkeypatch, replayed, "ga-text")
    folded = [e.label for e in test.expander]
    assert any("deltas: response\\.output\\_text\\.delta ×" in label for label in folded)
    test.toggle(key="timeline_fold").set_value(False).run()
    assert len(test.expander) == len(fixture_sessions("ga.jsonl")[0])
    assert len(test.expander) > len(folded)


def test_unknown_session_id_is_a_warning(monkeypatch: pytest.MonkeyPatch, replayed: str):
    test = page(monkeypatch, replayed, "no-such-session")
    assert "There is no session `no-such-session`" in test.warning[0].value


def test_session_list_pages_by_fifty(monkeypatch: pytest.MonkeyPatch, engine: Engine, db_url: str):
    writer = Writer(engine, flush_interval_s=0.02)
    writer.start()
    text_turn = fixture_sessions("ga.jsonl")[0]
    for minute in range(55):
        replay(writer, f"s{minute:02d}", text_turn, minute)
    writer.close()
    test = page(monkeypatch, db_url)
    first = list(test.dataframe[0].value["session"])
    assert first == [f"s{m:02d}" for m in range(54, 4, -1)]  # newest first
    element(test.get("pagination")[0]).set_value(2).run()
    assert list(test.dataframe[0].value["session"]) == ["s04", "s03", "s02", "s01", "s00"]


EVIL = "[click](http://evil) ![img](http://evil/x.png)"


def test_recorded_text_is_shown_as_text_not_markup(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, db_url: str
):
    """A stranger's transcript with a link and an image stays text on the page."""
    text_turn = json.dumps(fixture_sessions("ga.jsonl")[0])
    for said in ("What is the capital of France?", "The capital of France is Paris."):
        text_turn = text_turn.replace(said, EVIL)
    writer = Writer(engine, flush_interval_s=0.02)
    writer.start()
    replay(writer, "evil", json.loads(text_turn), 0)
    writer.close()
    test = page(monkeypatch, db_url, "evil")
    shown = turns(test)
    assert [role for role, _, _ in shown] == ["user", "assistant"]
    assert [[t.value for t in m.text] for m in test.chat_message] == [[EVIL], [EVIL]]
    marked_up = [
        *(e.value for kind in ("markdown", "caption") for e in getattr(test, kind)),
        *(e.label for e in test.expander),
    ]
    assert marked_up
    assert not [value for value in marked_up if "](http://evil" in str(value)]


def stored_responses(engine: Engine, session_id: str) -> list[Any]:
    r = table(Response)
    query = select(r).where(r.c.session_id == session_id).order_by(r.c.created_at, r.c.id)
    with engine.connect() as connection:
        return list(connection.execute(query))


def frame_with(test: AppTest, column: str) -> Any:
    (found,) = [d.value for d in test.dataframe if column in d.value.columns]
    return found


def ms(shown: str) -> float:
    """A whole-ms cell of the latency tables (`1,234`) as a number."""
    return float(shown.replace(",", ""))


def test_latency_waterfall_follows_each_turn(
    monkeypatch: pytest.MonkeyPatch, replayed: str, engine: Engine
):
    test = page(monkeypatch, replayed, "ga-voice")
    waterfall = frame_with(test, "first audio")
    stored = stored_responses(engine, "ga-voice")
    assert list(waterfall["response_id"]) == [r.response_id for r in stored]
    assert list(waterfall["turn"]) == list(range(1, len(stored) + 1))
    voiced = [(row, r) for row, r in zip(waterfall.to_dict("records"), stored, strict=True)]
    ended_by_vad = [(row, r) for row, r in voiced if r.turn_latency_ms is not None]
    assert ended_by_vad  # the fixture's server VAD ended the user's speech
    for row, response in ended_by_vad:
        assert row["speech stopped"] == "0"
        # Speech stopped → first audio, read off the waterfall, is the recorded turn latency.
        assert ms(row["first audio"]) == pytest.approx(response.turn_latency_ms, abs=0.5)
        duration = (response.done_at - response.created_at).total_seconds() * 1000
        assert ms(row["done"]) - ms(row["response created"]) == pytest.approx(duration, abs=1)
    phases = frame_with(test, "phase").set_index("phase")
    first_audio = sorted(r.time_to_first_audio_ms for r in stored if r.time_to_first_audio_ms)
    row = phases.loc["response created → first audio"]
    assert row["turns"] == len(first_audio)
    p50 = first_audio[math.ceil(len(first_audio) / 2) - 1]
    assert ms(row["p50_ms"]) == pytest.approx(p50, abs=0.5)
    assert ms(row["p95_ms"]) == pytest.approx(first_audio[-1], abs=0.5)


LATENCY_COLUMNS = (
    "time_to_first_audio_ms",
    "time_to_first_text_ms",
    "turn_latency_ms",
    "voice_to_voice_ms",
)


def test_overview_latency_has_turn_latency_voice_to_voice_and_duration(
    monkeypatch: pytest.MonkeyPatch, replayed: str, engine: Engine
):
    test = page(monkeypatch, replayed)
    test.switch_page("app_pages/overview.py").run()
    latencies = frame_with(test, "latency")
    sessions = ("ga-text", "ga-voice", "beta-voice", "ga-metadata", "ga-live")
    stored = [r for sid in sessions for r in stored_responses(engine, sid)]
    measured = {
        name for name in LATENCY_COLUMNS if any(getattr(r, name) is not None for r in stored)
    }
    assert "turn_latency_ms" in measured
    assert set(latencies["latency"]) == measured | {"response_duration_ms"}
    durations = sorted(
        round((r.done_at - r.created_at).total_seconds() * 1000)
        for r in stored
        if r.done_at is not None and r.created_at is not None
    )
    duration = latencies[latencies["latency"] == "response_duration_ms"]
    assert int(duration["responses"].sum()) == len(durations)
    assert float(duration["max"].max()) == pytest.approx(durations[-1], abs=1)


def test_sessions_with_errors_are_highlighted_in_the_list(
    monkeypatch: pytest.MonkeyPatch, replayed: str
):
    table = page(monkeypatch, replayed).dataframe[0]
    listed = list(table.value["session"])
    styles = table.proto.arrow_data.styler.styles
    # Pandas writes one rule per style, its selectors joined: `#T_x_row0_col0, #T_x_row0_col1 {…}`.
    painted_rows = {
        int(row)
        for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", styles)
        if "background-color" in body
        for row in re.findall(r"_row(\d+)_col", selectors)
    }
    painted = {listed[row] for row in painted_rows}
    with_errors = {s for s, n in zip(listed, table.value["errors"], strict=True) if n > 0}
    assert with_errors  # the voice fixture has error events
    assert painted == with_errors
