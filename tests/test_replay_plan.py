"""The pure parts of `rtrec replay`: the plan from recorded events and the rewriting of ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rtrec.replay import Overrides, plan, replay_path, rewrite, with_overrides

T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def row(seq: int, direction: str, payload: dict[str, Any], ms: int = 0) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": T0 + timedelta(milliseconds=ms),
        "direction": direction,
        "type": payload["type"],
        "payload": payload,
    }


def test_each_client_event_waits_for_the_answers_seen_before_it_in_the_recording():
    events = [
        row(0, "server", {"type": "session.created"}),
        row(1, "client", {"type": "session.update", "session": {}}, 10),
        row(2, "server", {"type": "session.updated"}),
        row(3, "client", {"type": "response.create"}, 250),
        row(4, "server", {"type": "response.created"}),
        row(5, "server", {"type": "response.done", "response": {"output": []}}),
    ]
    steps = plan(events, {}, with_audio=True)
    assert [s.event["type"] for s in steps.steps] == ["session.update", "response.create"]
    assert steps.steps[1].waits["session.updated"] == 1
    assert steps.steps[1].waits["response.done"] == 0
    assert steps.steps[1].delay_s == 0.24
    assert steps.final_waits["response.done"] == 1


def test_audio_appends_carry_the_recorded_bytes_or_are_left_out_without_audio():
    append = row(1, "client", {"type": "input_audio_buffer.append", "audio": 4})
    with_audio = plan([append], {1: b"\x01\x02\x03\x04"}, with_audio=True)
    assert with_audio.steps[0].event["audio"] == "AQIDBA=="
    without = plan([append], {}, with_audio=False)
    assert (without.steps, without.skipped_audio) == ([], 1)


def test_tool_outputs_and_truncates_name_the_replays_own_ids():
    ids = {"call_old": "call_new", "item_old": "item_new"}
    output = {"type": "function_call_output", "call_id": "call_old", "output": "{}"}
    created = rewrite({"type": "conversation.item.create", "item": output}, ids, None)
    assert created["item"]["call_id"] == "call_new"
    truncate = {"type": "conversation.item.truncate", "item_id": "item_old", "audio_end_ms": 5}
    assert rewrite(truncate, ids, None)["item_id"] == "item_new"
    cancel = rewrite({"type": "response.cancel", "response_id": "resp_old"}, ids, None)
    assert cancel == {"type": "response.cancel"}


def test_replay_path_swaps_the_model_and_drops_redacted_parameters():
    recorded = "/v1/realtime?model=gpt-realtime&api-key=%5BREDACTED%5D"
    assert replay_path(recorded, None) == "/v1/realtime?model=gpt-realtime"
    assert replay_path(recorded, "gpt-realtime-mini") == "/v1/realtime?model=gpt-realtime-mini"
    assert replay_path("/openai/realtime?deployment=d1", "d2") == "/openai/realtime?deployment=d2"


def test_overrides_go_into_a_ga_and_a_beta_session_update():
    overrides = Overrides(model="gpt-realtime-mini", voice="marin", instructions="Be terse.")
    ga = {"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime"}}
    ga_session = rewrite(ga, {}, overrides)["session"]
    assert ga_session["model"] == "gpt-realtime-mini"
    assert ga_session["instructions"] == "Be terse."
    assert ga_session["audio"] == {"output": {"voice": "marin"}}
    beta = rewrite({"type": "session.update", "session": {"voice": "alloy"}}, {}, overrides)
    assert beta["session"] == {"voice": "marin", "instructions": "Be terse."}


def test_a_recording_without_session_update_gets_one_for_the_overrides():
    steps = plan(
        [
            row(0, "server", {"type": "session.created"}),
            row(1, "client", {"type": "response.create"}),
        ],
        {},
        True,
    )
    changed = with_overrides(steps, Overrides(voice="marin"), "ga")
    first = changed.steps[0]
    assert first.event == {"type": "session.update", "session": {"type": "realtime"}}
    assert first.waits == {"session.created": 1}
    assert [s.event["type"] for s in changed.steps] == ["session.update", "response.create"]
    assert with_overrides(steps, Overrides(model="m"), "ga") is steps
