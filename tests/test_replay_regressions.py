"""Issue 23's reproductions: replays against a scripted upstream whose answers the test changes
trip the right `rtrec diff --fail-on` gate, an unchanged replay passes them all, and a replay that
could not run as recorded fails in one line."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.proxy import ProxyProcess
from tests.support.replays import diff, record_one, replay, rtrec
from tests.support.upstream import DEFAULT_QUESTION, Answer, ScriptedUpstream

GATES = (
    "model_changed",
    "modalities_changed",
    "structure_changed",
    "audio_ms-30%",
    "output_tokens±20%",
    "cost+20%",
    "similarity<0.9",
    "errors_changed",
)


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream().running() as server:
        yield server


async def test_an_unchanged_replay_passes_every_gate(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, sqlite_db_url: str
):
    original = await record_one(run_proxy, upstream.base_url, sqlite_db_url)
    replayed = await replay(original, upstream.base_url, sqlite_db_url)
    code, report, err = await diff(original, replayed, sqlite_db_url, *GATES)
    assert (code, report["failed"], err) == (0, [], "")
    assert report["metrics"]["audio_ms"] == [600.0, 600.0]


def _other_model(upstream: ScriptedUpstream) -> None:
    upstream.model = "gpt-realtime-mini"


def _no_audio(upstream: ScriptedUpstream) -> None:
    upstream.answers[DEFAULT_QUESTION] = Answer(audio_ms=0)


def _truncated(upstream: ScriptedUpstream) -> None:
    upstream.answers[DEFAULT_QUESTION] = Answer(text="It is", output_tokens=12)


def _unpriced_model(upstream: ScriptedUpstream) -> None:
    upstream.model = "gpt-unpriced-realtime"


@pytest.mark.parametrize(
    ("change", "spec", "reason"),
    [
        (_other_model, "model_changed", "model_changed: model changed"),
        (_no_audio, "audio_ms-30%", "audio_ms-30%: turn 1 audio_ms 600 -> 0 (-100.0%)"),
        (_no_audio, "modalities_changed", "modalities_changed: modalities changed"),
        (_truncated, "output_tokens±20%", "output_tokens±20%: output_tokens 900 -> 12 (-98.7%)"),
        (_unpriced_model, "cost+20%", "cost+20%: cost of B unknown (usage without a price)"),
    ],
    ids=["model", "lost-audio", "lost-audio-modalities", "truncated", "missing-price"],
)
async def test_a_regression_trips_its_gate(
    run_proxy: Callable[..., ProxyProcess],
    upstream: ScriptedUpstream,
    sqlite_db_url: str,
    change: Callable[[ScriptedUpstream], None],
    spec: str,
    reason: str,
):
    original = await record_one(run_proxy, upstream.base_url, sqlite_db_url)
    change(upstream)
    replayed = await replay(original, upstream.base_url, sqlite_db_url)
    code, report, err = await diff(original, replayed, sqlite_db_url, spec)
    assert (code, report["failed"]) == (1, [reason])
    assert err == f"rtrec diff: failed {reason}\n"


async def test_an_unknown_cost_passes_when_allowed(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, sqlite_db_url: str
):
    original = await record_one(run_proxy, upstream.base_url, sqlite_db_url)
    _unpriced_model(upstream)
    replayed = await replay(original, upstream.base_url, sqlite_db_url)
    code, _, err = await rtrec(
        "diff", original, replayed, "--db", sqlite_db_url, "--fail-on", "cost+20%",
        "--allow-unknown-cost",
    )  # fmt: skip
    assert (code, err) == (0, "")


async def test_a_changed_tool_argument_trips_tool_calls_changed(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, sqlite_db_url: str
):
    upstream.answers[DEFAULT_QUESTION] = Answer(tool_call=("get_weather", '{"city": "Paris"}'))
    original = await record_one(run_proxy, upstream.base_url, sqlite_db_url)
    upstream.answers[DEFAULT_QUESTION] = Answer(tool_call=("get_weather", '{"city": "Rome"}'))
    replayed = await replay(original, upstream.base_url, sqlite_db_url)
    code, report, _ = await diff(original, replayed, sqlite_db_url, "tool_calls_changed")
    assert (code, report["failed"]) == (1, ["tool_calls_changed: tool calls changed"])
    assert report["turns"][0]["tool_calls"][1] == [
        {"name": "get_weather", "arguments": {"city": "Rome"}}
    ]


async def test_replay_against_a_silent_upstream_fails_within_its_timeout(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, sqlite_db_url: str
):
    original = await record_one(run_proxy, upstream.base_url, sqlite_db_url)
    upstream.silent = True
    started = time.monotonic()
    code, out, err = await rtrec(
        "replay", original, "--upstream", upstream.base_url, "--pace", "fast",
        "--timeout-s", "2", "--db", sqlite_db_url,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("rtrec replay: no answer from the upstream in 2s before event 1 ")
    assert "session.created" in err
    # The proxy child starts within the remaining time; 30 s is the default wait it did not use.
    assert elapsed < 30, elapsed


async def test_replay_refused_by_the_upstream_is_one_line(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, sqlite_db_url: str
):
    original = await record_one(run_proxy, upstream.base_url, sqlite_db_url)
    upstream.refuse_status = 403
    code, _, err = await rtrec(
        "replay", original, "--upstream", upstream.base_url, "--pace", "fast", "--db", sqlite_db_url
    )
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith(f"rtrec replay: {upstream.base_url} did not take the session (HTTP 403)")


async def test_replay_with_errors_the_original_did_not_have_fails(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, sqlite_db_url: str
):
    original = await record_one(run_proxy, upstream.base_url, sqlite_db_url)
    upstream.answers[DEFAULT_QUESTION] = Answer(error_code="rate_limit_exceeded")
    code, _, err = await rtrec(
        "replay", original, "--upstream", upstream.base_url, "--pace", "fast", "--db", sqlite_db_url
    )
    assert code == 1
    assert err == (
        "rtrec replay: the upstream sent errors the recording did not have: 1 rate_limit_exceeded\n"
    )
