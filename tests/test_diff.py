"""`rtrec diff`: the turn-by-turn comparison, the --fail-on thresholds, and the command itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from analysis import diff
from analysis.stats import percentile
from rtrec import thresholds
from rtrec.cli import main
from storage.records import EventRecord, ResponseDone, SessionOpened
from storage.writer import Writer

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def done(
    response_id: str, text: str = "", calls: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    output: list[dict[str, Any]] = [
        {"type": "function_call", "name": name, "arguments": args, "call_id": f"call_{i}"}
        for i, (name, args) in enumerate(calls)
    ]
    if text:
        output.append(
            {"type": "message", "content": [{"type": "output_audio", "transcript": text}]}
        )
    return {
        "type": "response.done",
        "response": {"id": response_id, "status": "completed", "output": output},
    }


def summary(
    session_id: str,
    turns: list[dict[str, Any]],
    costs: list[float],
    ttfa: list[float | None] | None = None,
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    responses = [
        {
            "response_id": t["response"]["id"],
            "status": "completed",
            "total_tokens": 100,
            "input_tokens": 80,
            "output_tokens": 20,
            "cost_usd": cost,
            "time_to_first_audio_ms": (ttfa or [None] * len(turns))[i],
        }
        for i, (t, cost) in enumerate(zip(turns, costs, strict=True))
    ]
    events = [{"type": "response.done", "payload": t} for t in turns]
    events += [{"type": "error", "payload": {"error": {"code": code}}} for code in errors]
    session = {"id": session_id, "model": "m", "api": "ga", "record_mode": "full"}
    return {
        "session": session,
        "properties": {},
        "cost": {"cost_usd": sum(costs), "unpriced": 0},
        "responses": responses,
        "transcriptions": [],
        "events": events,
    }


def test_equal_sessions_have_equal_structure_and_full_similarity():
    turns = [done("r1", "Hello there"), done("r2", calls=(("weather", '{"city": "Paris"}'),))]
    report = diff.compare(summary("a", turns, [0.1, 0.2]), summary("b", turns, [0.1, 0.2]))
    assert report["structure_equal"]
    assert report["text_similarity"] == 1.0
    assert [t["tool_calls_changed"] for t in report["turns"]] == [False, False]


def test_tool_arguments_compare_as_values_not_text():
    a = summary("a", [done("r1", calls=(("weather", '{"city":"Paris"}'),))], [0.1])
    b = summary("b", [done("r1", calls=(("weather", '{"city": "Paris"}'),))], [0.1])
    c = summary("c", [done("r1", calls=(("weather", '{"city": "Rome"}'),))], [0.1])
    assert not diff.compare(a, b)["tool_calls_changed"]
    assert diff.compare(a, c)["tool_calls_changed"]


def test_changed_text_lowers_similarity_without_changing_structure():
    a = summary("a", [done("r1", "The capital of France is Paris.")], [0.1])
    b = summary("b", [done("r1", "Paris is the capital of France.")], [0.1])
    report = diff.compare(a, b)
    assert report["structure_equal"]
    assert report["text_changed"]
    assert 0 < report["turns"][0]["text_similarity"] < 1


def test_a_missing_turn_and_new_errors_change_the_structure():
    a = summary("a", [done("r1", "x"), done("r2", "y")], [0.1, 0.1])
    b = summary("b", [done("r1", "x")], [0.1], errors=("invalid_value",))
    report = diff.compare(a, b)
    assert report["turns_changed"]
    assert report["errors_changed"]
    assert report["turns"][1]["only_in"] == "a"
    assert report["errors"]["b"] == {"invalid_value": 1}


def test_latency_percentiles_are_nearest_rank():
    assert percentile([10, 20, 30, 40], 0.5) == 20
    assert percentile([10, 20, 30, 40], 0.95) == 40
    assert percentile([], 0.5) is None


def test_percentiles_skip_missing_values():
    assert percentile([None, 30.0, float("nan"), 10.0], 0.5) == 10.0
    assert percentile([None, float("nan")], 0.95) is None


@pytest.mark.parametrize(
    ("spec", "cost_b", "ttfa_b", "trips"),
    [
        ("cost+20%", 0.35, 100.0, False),
        ("cost+20%", 0.37, 100.0, True),
        ("cost+0.1", 0.39, 100.0, False),
        ("ttfa_p95+200ms", 0.3, 399.0, False),
        ("ttfa_p95+200ms", 0.3, 401.0, True),
        ("tokens+10%", 0.3, 100.0, False),
        ("tool_calls_changed", 0.3, 100.0, False),
    ],
)
def test_thresholds_trip_only_past_their_allowance(
    spec: str, cost_b: float, ttfa_b: float, trips: bool
):
    turns = [done("r1", "hi"), done("r2", "bye")]
    a = summary("a", turns, [0.1, 0.2], ttfa=[100.0, 200.0])
    b = summary("b", turns, [0.1, cost_b - 0.1], ttfa=[100.0, ttfa_b])
    reason = thresholds.check(thresholds.parse(spec), diff.compare(a, b))
    assert (reason is not None) == trips
    if trips:
        assert reason is not None
        assert reason.startswith(spec)


def test_a_similarity_floor_trips_on_changed_text():
    a = summary("a", [done("r1", "good morning to you")], [0.1])
    b = summary("b", [done("r1", "completely different words")], [0.1])
    report = diff.compare(a, b)
    assert thresholds.check(thresholds.parse("similarity<0.9"), report) is not None
    assert thresholds.check(thresholds.parse("similarity<0.1"), report) is None


@pytest.mark.parametrize(
    "spec", ["cost", "cost+", "price+20%", "cost+20ms", "similarity<2", "tokens<0.5"]
)
def test_unknown_threshold_specs_are_refused(spec: str):
    with pytest.raises(thresholds.ThresholdError):
        thresholds.parse(spec)


def write_session(writer: Writer, session_id: str, text: str, cost: float) -> None:
    writer.submit([SessionOpened(session_id, NOW, "ga", "/v1/realtime?model=m", "full", model="m")])
    payload = done(f"{session_id}-r1", text)
    writer.submit([EventRecord(session_id, 0, NOW, "server", "response.done", 10, payload=payload)])
    usage: dict[str, int | None] = {"input_tokens": 80, "output_tokens": 20, "total_tokens": 100}
    writer.submit(
        [ResponseDone(session_id, f"{session_id}-r1", NOW, "completed", usage=usage, cost_usd=cost)]
    )


@pytest.fixture
def two_sessions(engine: Engine) -> None:
    writer = Writer(engine)
    writer.start()
    write_session(writer, "s-a", "It is sunny in Paris.", 0.10)
    write_session(writer, "s-b", "It is sunny in Paris today.", 0.15)
    writer.close()


def test_diff_command_reports_json_and_exits_by_the_thresholds(
    two_sessions: None, db_url: str, capsys: Any
):
    base = ["diff", "s-a", "s-b", "--db", db_url]
    assert main([*base, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["cost"] == [0.1, 0.15]
    assert report["structure_equal"]
    assert report["failed"] == []
    assert main([*base, "--fail-on", "cost+20%", "--fail-on", "cost+60%"]) == 1
    captured = capsys.readouterr()
    assert "text similarity" in captured.out
    assert captured.err == "rtrec diff: failed cost+20%: cost 0.1 -> 0.15 (+50.0%)\n"


def test_diff_of_an_unknown_session_is_one_line(two_sessions: None, db_url: str, capsys: Any):
    assert main(["diff", "s-a", "nope", "--db", db_url]) == 1
    assert capsys.readouterr().err == "rtrec diff: no session 'nope' in the database\n"


def test_a_bad_threshold_is_a_usage_error(sqlite_db_url: str, capsys: Any):
    with pytest.raises(SystemExit) as exit_info:
        main(["diff", "a", "b", "--db", sqlite_db_url, "--fail-on", "cost*2"])
    assert exit_info.value.code == 2
    assert "is not a threshold" in capsys.readouterr().err


def test_diff_takes_unique_id_prefixes(engine: Engine, db_url: str, capsys: Any):
    writer = Writer(engine)
    writer.start()
    write_session(writer, "sess-alpha-1", "It is sunny in Paris.", 0.10)
    write_session(writer, "sess-beta-2", "It is sunny in Paris today.", 0.15)
    writer.close()
    assert main(["diff", "sess-a", "sess-b", "--db", db_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["a"]["id"], report["b"]["id"]) == ("sess-alpha-1", "sess-beta-2")
    assert main(["diff", "sess-", "sess-b", "--db", db_url]) == 1
    assert capsys.readouterr().err == (
        "rtrec diff: 'sess-' starts more than one session id: give more of it\n"
    )


def report_with(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return diff.compare(a, b)


@pytest.mark.parametrize(
    ("spec", "output_b", "trips"),
    [
        ("output_tokens±20%", 12, True),  # a truncated answer: a drop trips a two-sided spec
        ("output_tokens+-20%", 12, True),
        ("output_tokens±20%", 30, True),
        ("output_tokens±20%", 22, False),
        ("output_tokens+20%", 12, False),  # `+` is one-sided: only a rise
        ("output_tokens-20%", 12, True),
        ("output_tokens-20%", 30, False),
    ],
)
def test_signed_thresholds_trip_on_their_side(spec: str, output_b: int, trips: bool):
    a = summary("a", [done("r1", "hi")], [0.1])
    b = summary("b", [done("r1", "hi")], [0.1])
    b["responses"][0]["output_tokens"] = output_b
    reason = thresholds.check(thresholds.parse(spec), diff.compare(a, b))
    assert (reason is not None) == trips, reason


def test_an_unknown_cost_trips_a_cost_threshold_unless_allowed():
    a = summary("a", [done("r1", "hi")], [0.1])
    b = summary("b", [done("r1", "hi")], [0.1])
    b["cost"] = {"cost_usd": None, "unpriced": 1}
    report = diff.compare(a, b)
    assert report["cost_unknown"] == [False, True]
    spec = thresholds.parse("cost+20%")
    assert thresholds.check(spec, report) == "cost+20%: cost of B unknown (usage without a price)"
    assert thresholds.check(spec, report, allow_unknown_cost=True) is None


def test_a_changed_model_trips_model_changed():
    a = summary("a", [done("r1", "hi")], [0.1])
    b = summary("b", [done("r1", "hi")], [0.1])
    b["session"] = {**b["session"], "model": "other"}
    report = diff.compare(a, b)
    assert thresholds.check(thresholds.parse("model_changed"), report) is not None
    assert thresholds.check(thresholds.parse("model_changed"), diff.compare(a, a)) is None


def test_lost_audio_changes_modalities_and_trips_audio_ms_per_turn():
    a = summary("a", [done("r1", "hi there")], [0.1])
    text_only = done("r1")
    text_only["response"]["output"] = [
        {"type": "message", "content": [{"type": "output_text", "text": "hi there"}]}
    ]
    b = summary("b", [text_only], [0.1])
    a["audio_ms"], b["audio_ms"] = {"r1": 1200.0}, {}
    report = diff.compare(a, b)
    assert report["text_similarity"] == 1.0  # the words are the same ...
    assert report["modalities_changed"]  # ... but B said them in text only
    assert not report["structure_equal"]
    reason = thresholds.check(thresholds.parse("audio_ms-30%"), report)
    assert reason == "audio_ms-30%: turn 1 audio_ms 1200 -> 0 (-100.0%)"
    assert thresholds.check(thresholds.parse("audio_ms+30%"), report) is None


@pytest.mark.parametrize("spec", ["turns-1", "cost±10%", "input_audio_tokens+5%", "audio_ms±100ms"])
def test_signed_specs_parse(spec: str):
    assert thresholds.parse(spec).metric in thresholds.METRICS


def test_a_different_close_trips_close_changed():
    a = summary("a", [done("r1", "hi")], [0.1])
    b = summary("b", [done("r1", "hi")], [0.1])
    a["session"] = {**a["session"], "close_code": 1000, "close_reason": ""}
    b["session"] = {**b["session"], "close_code": 1011, "close_reason": "internal error"}
    spec = thresholds.parse("close_changed")
    assert thresholds.check(spec, diff.compare(a, b)) == "close_changed: close changed"
    assert thresholds.check(spec, diff.compare(a, a)) is None
