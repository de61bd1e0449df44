"""Every dashboard page in Streamlit's AppTest, on databases recorded through a real proxy."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from analysis.stats import as_utc
from dashboard import display
from dashboard.auth import MAX_FAILURES, FailedAttempts
from storage.db import head_revision, make_engine, upgrade
from storage.models import (
    Event,
    RealtimeSession,
    Response,
    Transcription,
    UpgradeFailure,
    table,
)
from tests.support.dashboard import (
    done_usages,
    record,
    rows,
)

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One recorded conversation per database kind, shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("dashboard")
    if request.param == "sqlite":
        db_url = f"sqlite:///{folder / 'rtrec.db'}"
    else:
        db_url = request.getfixturevalue("postgres").create_database()
    sent = asyncio.run(record(db_url, folder))
    (session,) = rows(db_url, RealtimeSession)
    return {"db_url": db_url, "sent": sent, "session_id": session.id}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs dashboard/app.py in AppTest against the database `RTREC_DB` names."""

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


def texts(test: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "error", "warning")
        for e in getattr(test, kind)
    ]
    return "\n".join(str(p) for p in parts)


# ----------------------------------------------------------------------------- database states


@pytest.mark.parametrize("page", [None, "app_pages/session.py", "app_pages/overview.py"])
def test_empty_database_explains_how_to_record(
    app: Any, engine: Any, db_url: str, page: str | None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("RTREC_LISTEN_PORT", raising=False)
    shown = texts(app(db_url, page=page))
    assert "No sessions recorded yet" in shown
    assert "OPENAI_BASE_URL=http://127.0.0.1:8080/v1" in shown
    assert "rtrec demo" in shown


def test_missing_database_is_a_message_not_a_traceback(app: Any, tmp_path: Path):
    missing = tmp_path / "nowhere.db"
    test = app(f"sqlite:///{missing}")
    assert "does not exist" in test.error[0].value
    assert "rtrec demo" in test.error[0].value
    assert not missing.exists()


def test_old_schema_asks_for_an_upgrade(app: Any, db_url: str):
    old = make_engine(db_url)
    upgrade(old, "0001")
    old.dispose()
    message = app(db_url).error[0].value
    assert f"is at schema 0001, and this rtrec needs {head_revision()}" in message
    assert "rtrec db upgrade" in message


def test_a_file_that_is_not_a_database_is_reported(app: Any, tmp_path: Path):
    junk = tmp_path / "notes.db"
    junk.write_text("not a database " * 100)
    assert "Cannot read the database" in app(f"sqlite:///{junk}").error[0].value


def test_a_password_in_the_url_is_never_shown(app: Any):
    url = "postgresql+psycopg://rtrec:s3cret-pw@127.0.0.1:1/rtrec"
    shown = texts(app(url))
    assert "s3cret-pw" not in shown
    assert "***" in shown or "Cannot" in shown


# ----------------------------------------------------------------------------- recorded traffic


def usage_row(usage: dict[str, Any] | None) -> dict[str, Any]:
    """The server's usage in the `responses` column names (what the page should show)."""
    if not usage:
        return {}
    itd, otd = usage["input_token_details"], usage["output_token_details"]
    cached = itd.get("cached_tokens_details") or {}
    return {
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
        "input_text_tokens": itd["text_tokens"],
        "input_audio_tokens": itd["audio_tokens"],
        "input_image_tokens": itd.get("image_tokens"),
        "cached_tokens": itd["cached_tokens"],
        "cached_text_tokens": cached.get("text_tokens"),
        "cached_audio_tokens": cached.get("audio_tokens"),
        "output_text_tokens": otd["text_tokens"],
        "output_audio_tokens": otd["audio_tokens"],
    }


def chat(test: AppTest) -> list[tuple[str, str, str]]:
    """(role, markdown and text, caption) of each turn on the conversation tab."""
    return [
        (
            message.name,
            "\n".join(m.value for m in [*message.markdown, *message.text]),
            "\n".join(c.value for c in message.caption),
        )
        for message in test.chat_message
    ]


def test_conversation_shows_every_turn_in_order(app: Any, recorded: dict[str, Any]):
    sent = recorded["sent"]
    turns = chat(app(recorded["db_url"], recorded["session_id"]))
    assert [role for role, _, _ in turns] == [
        *("user", "assistant"),  # text
        *("user", "assistant"),  # voice
        *("user", "assistant", "tool", "assistant"),  # tool call and its result
        *("assistant", "assistant"),  # barge-in, client cancel
        "error",
    ]
    answer = next(e["text"] for e in sent if e["type"] == "response.output_text.done")
    spoken = next(
        e["transcript"] for e in sent if e["type"] == "response.output_audio_transcript.done"
    )
    heard = next(
        e["transcript"]
        for e in sent
        if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    assert turns[0][1] == "What is the capital of France?"
    assert answer in turns[1][1]
    assert turns[2][1] == heard
    assert spoken in turns[3][1]
    call = done_usages(sent)[2]["output"][0]
    assert f"Tool call **get\\_weather** (`{call['call_id']}`)" in turns[5][1]
    assert f"Tool result for `{call['call_id']}`" in turns[6][1]
    assert ":orange-badge[barge-in (turn_detected)]" in turns[8][1]
    assert ":gray-badge[cancelled by the client]" in turns[9][1]
    assert "`invalid_value`" in turns[10][1]


def test_each_answer_shows_its_tokens_cost_and_latency(app: Any, recorded: dict[str, Any]):
    turns = chat(app(recorded["db_url"], recorded["session_id"]))
    answers = [caption for role, _, caption in turns if role == "assistant"]
    stored = rows(recorded["db_url"], Response)
    done = done_usages(recorded["sent"])
    assert len(answers) == len(done) == len(stored) == 6
    for caption, response, row in zip(answers, done, stored, strict=True):
        assert display.token_split(usage_row(response["usage"])) in caption
        assert f"cost {display.usd(row.cost_usd)}" in caption  # `—` while no price is known
        assert f"first text {display.millis(row.time_to_first_text_ms)}" in caption
    assert stored[1].time_to_first_audio_ms is not None
    assert f"first audio {display.millis(stored[1].time_to_first_audio_ms)}" in answers[1]


def test_turn_numbers_agree_with_the_header_and_skip_errors(app: Any, recorded: dict[str, Any]):
    test = app(recorded["db_url"], recorded["session_id"])
    header = {m.label: m.value for m in test.metric}["Turns (responses)"]
    numbers = [(role, caption.split(" · ")[0]) for role, _, caption in chat(test)]
    assert numbers == [
        *(("user", "turn 1"), ("assistant", "turn 1")),
        *(("user", "turn 2"), ("assistant", "turn 2")),
        *(("user", "turn 3"), ("assistant", "turn 3"), ("tool", "turn 4"), ("assistant", "turn 4")),
        *(("assistant", "turn 5"), ("assistant", "turn 6")),
        ("error", numbers[-1][1]),
    ]
    assert "turn" not in chat(test)[-1][2]
    assert header == "6"


def test_an_error_shows_the_client_event_that_caused_it(app: Any, recorded: dict[str, Any]):
    test = app(recorded["db_url"], recorded["session_id"])
    (bad,) = [e for e in rows(recorded["db_url"], Event) if e.event_id == "evt_bad_1"]
    assert bad.direction == "client"
    (error,) = [m for m in test.chat_message if m.name == "error"]
    (cause,) = error.expander
    assert cause.label == f"caused by client event \\#{bad.seq} · no\\.such\\.event"
    assert cause.json[0].value == json.dumps({"type": "no.such.event", "event_id": "evt_bad_1"})


def test_timeline_shows_times_since_start_and_since_the_previous_event(
    app: Any, recorded: dict[str, Any]
):
    test = app(recorded["db_url"], recorded["session_id"])
    session = rows(recorded["db_url"], RealtimeSession)[0]
    events = {e.seq: e for e in rows(recorded["db_url"], Event)}
    test.multiselect(key="timeline_types").set_value(["error", "session.update"]).run()
    labels = [e.label for e in test.expander if e.label.startswith("#")]
    assert len(labels) == 4  # three session.update and the error
    previous = None
    for label in labels:
        seq = int(label.split(" · ")[0][1:])
        ts = events[seq].ts
        since_start = (ts - session.started_at).total_seconds()
        parts = label.split(" · ")
        assert parts[2] == display.offset(since_start)
        expected_gap = None if previous is None else (ts - previous).total_seconds()
        assert parts[3] == f"Δ {display.offset(expected_gap)}"
        previous = ts


def test_header_totals_match_the_server(app: Any, recorded: dict[str, Any]):
    test = app(recorded["db_url"], recorded["session_id"])
    metrics = {m.label: m.value for m in test.metric}
    done = done_usages(recorded["sent"])
    total = sum((r["usage"] or {}).get("total_tokens", 0) for r in done)
    costs = [r.cost_usd for r in rows(recorded["db_url"], Response)]
    costs += [t.cost_usd for t in rows(recorded["db_url"], Transcription)]
    known = [c for c in costs if c is not None]
    assert metrics["Turns (responses)"] == str(len(done))
    assert metrics["Total tokens"] == f"{total:,}"
    assert metrics["Cost"] == (display.usd(sum(known)) if known else "—")
    assert metrics["Errors"] == "1"


def test_usage_tab_lists_every_response(app: Any, recorded: dict[str, Any]):
    test = app(recorded["db_url"], recorded["session_id"])
    usage = test.dataframe[0].value
    done = done_usages(recorded["sent"])
    assert list(usage["response_id"]) == [r["id"] for r in done]
    assert list(usage["status"]) == [r["status"] for r in done]
    assert list(usage["input_tokens"].fillna(-1)) == [
        (r["usage"] or {}).get("input_tokens", -1) for r in done
    ]


def test_timeline_filters_by_type(app: Any, recorded: dict[str, Any]):
    test = app(recorded["db_url"], recorded["session_id"])
    test.multiselect(key="timeline_types").set_value(["error"]).run()
    labels = [e.label for e in test.expander if e.label.startswith("#")]
    assert len(labels) == 1
    assert "← server sent · error" in labels[0]
    assert "1 events" in texts(test)


def test_session_list_shows_totals(app: Any, recorded: dict[str, Any]):
    listed = app(recorded["db_url"]).dataframe[0].value
    done = done_usages(recorded["sent"])
    assert list(listed["session"]) == [recorded["session_id"]]
    assert list(listed["turns"]) == [len(done)]
    assert list(listed["status"]) == ["closed"]
    assert listed["close"][0].startswith("1000")
    assert list(listed["errors"]) == [1]  # the `error` event


@pytest.mark.parametrize(
    ("widget", "value", "found"),
    [
        ("sessions_search", "capital of FRANCE", True),
        ("sessions_search", "zebra crossing", False),
        ("sessions_search", "%", False),
        ("sessions_errors", True, True),
        ("sessions_status", ["error"], False),
        ("sessions_status", ["closed"], True),
        ("sessions_cost", 1000.0, False),
    ],
)
def test_session_filters(app: Any, recorded: dict[str, Any], widget: str, value: Any, found: bool):
    test = app(recorded["db_url"])
    element = test.get_by_key(widget) if hasattr(test, "get_by_key") else None
    assert element is not None
    element.set_value(value).run()
    if found:
        assert list(test.dataframe[0].value["session"]) == [recorded["session_id"]]
    else:
        assert not test.dataframe
        assert "No session matches these filters." in texts(test)


def test_overview_totals(app: Any, recorded: dict[str, Any]):
    test = app(recorded["db_url"], page="app_pages/overview.py")
    metrics = {m.label: m.value for m in test.metric}
    done = done_usages(recorded["sent"])
    inputs = sum((r["usage"] or {}).get("input_tokens", 0) for r in done)
    assert metrics["Sessions"] == "1"
    assert metrics["Responses"] == str(len(done))
    assert metrics["Input tokens"] == f"{inputs:,}"
    errors = test.dataframe[1].value
    assert "invalid_value" in set(errors["error_code"])


# ----------------------------------------------------------------------------- password


def password_inputs(test: AppTest) -> list[Any]:
    return [t for t in test.text_input if t.proto.type == TextInputProto.PASSWORD]


def test_with_no_password_set_pages_open_directly(
    app: Any, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("RTREC_DASHBOARD_PASSWORD", raising=False)
    test = app(recorded["db_url"])
    assert not password_inputs(test)
    assert list(test.dataframe[0].value["session"]) == [recorded["session_id"]]


def test_a_set_password_is_asked_before_any_page(
    app: Any, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RTREC_DASHBOARD_PASSWORD", "open sesame")
    test = app(recorded["db_url"], recorded["session_id"])
    (password,) = password_inputs(test)
    assert password.label == "Password"
    assert not test.dataframe
    assert not test.chat_message
    assert not test.metric
    assert recorded["session_id"] not in texts(test)

    password.input("open sesamE")
    test.button[0].click().run()
    assert "Wrong password." in texts(test)
    assert not test.dataframe
    assert not test.chat_message

    test.text_input[0].input("open sesame")
    test.button[0].click().run()
    assert not test.exception
    assert not password_inputs(test)
    assert {m.label for m in test.metric} >= {"Turns (responses)", "Errors"}
    assert "open sesame" not in texts(test)


def test_wrong_passwords_are_rate_limited_per_browser_session(
    app: Any, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RTREC_DASHBOARD_PASSWORD", "open sesame")
    test = app(recorded["db_url"])
    for guess in range(MAX_FAILURES):
        test.text_input[0].input(f"guess {guess}")
        test.button[0].click().run()
        assert "Wrong password." in texts(test)
    test.text_input[0].input("open sesame")  # right, but too late
    test.button[0].click().run()
    assert password_inputs(test)
    assert "Too many wrong passwords: try again in " in texts(test)
    assert not test.dataframe
    other_browser = app(recorded["db_url"])  # its own session: not locked out by this one
    other_browser.text_input[0].input("open sesame")
    other_browser.button[0].click().run()
    assert not password_inputs(other_browser)


def test_failed_attempts_lock_a_client_for_the_window_only():
    attempts = FailedAttempts(limit=2, window_s=60)
    attempts.failed(["a", "ip"], 0.0)
    assert attempts.wait_s(["a", "ip"], 1.0) == 0
    attempts.failed(["a", "ip"], 10.0)
    assert attempts.wait_s(["a"], 11.0) == 49
    assert attempts.wait_s(["b", "ip"], 11.0) == 49  # another session from the same address
    assert attempts.wait_s(["b"], 11.0) == 0
    assert attempts.wait_s(["a"], 60.5) == 0


def test_empty_state_shows_the_port_the_proxy_listens_on(
    app: Any, engine: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RTREC_LISTEN_PORT", "9123")
    shown = texts(app(db_url))
    assert "OPENAI_BASE_URL=http://127.0.0.1:9123/v1" in shown
    assert "8080" not in shown


def vega_frames(test: AppTest) -> list[Any]:
    """The data of every Vega-Lite chart on the page, as DataFrames."""
    charts = test.get("vega_lite_chart")
    return [convert_arrow_bytes_to_pandas_df(c.proto.data.data) for c in charts]


def test_overview_charts_by_hour(app: Any, recorded: dict[str, Any]):
    test = app(recorded["db_url"], page="app_pages/overview.py")
    test.get("button_group")[0].set_value("hour").run()
    assert "Sessions per hour" in [s.value for s in test.subheader]
    (session,) = rows(recorded["db_url"], RealtimeSession)
    hour = as_utc(session.started_at).strftime("%Y-%m-%d %H:00")
    sessions = vega_frames(test)[0]
    assert list(sessions["hour"]) == [hour]
    assert list(sessions["sessions"]) == [1]


def test_compare_page_shows_rtrec_diffs_report(app: Any, recorded: dict[str, Any]):
    session_id = recorded["session_id"]
    test = app(recorded["db_url"], page="app_pages/compare.py")
    assert "Enter two session ids" in texts(test)
    test.text_input[0].input(session_id)
    test.text_input[1].input(session_id[:13]).run()  # a unique prefix names the same session
    assert [s.value for s in test.success] == [
        "Same structure: turns, statuses, tool calls and errors agree."
    ]
    turns = test.dataframe[1].value
    assert len(turns) == len(done_usages(recorded["sent"]))
    assert set(turns["text similarity"]) == {"100%"}  # a percent, as the metrics above it
    test.text_input[1].input("no-such-session").run()
    (warning,) = test.warning
    assert warning.value == "There is no session `no-such-session` in this database."


def test_overview_lists_failed_connection_attempts(app: Any, engine: Any, db_url: str):
    with engine.begin() as connection:
        connection.execute(
            table(UpgradeFailure).insert(),
            [
                {
                    "ts": datetime.now(UTC),
                    "status": 502,
                    "reason": "[Errno 111] Connect call failed",
                    "path": "/v1/realtime?model=gpt-realtime",
                }
            ],
        )
    test = app(db_url, page="app_pages/overview.py")
    (failures,) = [frame.value for frame in test.dataframe if "status" in frame.value.columns]
    assert list(failures["status"]) == [502]
    assert "Connect call failed" in failures["reason"][0]
