"""Metrics: token split, latency definitions on known timestamps, and a live /metrics scrape."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

import protocol
import rtrec
from recorder.metrics import Metrics
from recorder.observe import observe, token_series
from recorder.session import SessionRecorder
from simulator.server import FakeRealtimeServer
from storage.db import make_engine
from storage.models import RateLimit, Response, Transcription, table
from storage.records import ResponseDone, SessionOpened, TranscriptionRecord
from tests.support.conversation import run_conversation
from tests.support.fixtures import fixture_lines
from tests.support.proxy import ProxyProcess


@pytest.mark.parametrize("name", ["beta.jsonl", "ga.jsonl"])
def test_token_series_sum_to_total_tokens(name: str):
    usages = [
        line["event"]["response"]["usage"]
        for line in fixture_lines(name)
        if line["event"]["type"] == "response.done" and line["event"]["response"].get("usage")
    ]
    assert usages
    for usage in usages:
        series = token_series(protocol.response_usage(usage))
        assert sum(series.values()) == usage["total_tokens"]
        cached = sum(v for (_d, _m, c), v in series.items() if c == "true")
        assert cached == usage["input_token_details"].get("cached_tokens", 0)


def test_tokens_without_breakdown_are_unknown():
    usage = protocol.response_usage({"input_tokens": 10, "output_tokens": 4, "total_tokens": 14})
    assert token_series(usage) == {
        ("input", "unknown", "false"): 10,
        ("output", "unknown", "false"): 4,
    }


def message(recorder: SessionRecorder, from_client: bool, event: dict[str, Any], ts: float):
    return recorder.on_message(from_client, json.dumps(event).encode(), True, ts)


def append(ms: int) -> dict[str, Any]:
    return {
        "type": "input_audio_buffer.append",
        "audio": base64.b64encode(b"\0" * 48 * ms).decode(),
    }


def test_latency_definitions_on_known_timestamps():
    recorder = SessionRecorder(
        SessionOpened("s", datetime(2026, 1, 1), "ga", "/v1/realtime", "full", model="gpt-realtime")
    )
    message(recorder, True, append(1000), 10.0)  # audio 0-1000 ms relayed at 10.0
    message(recorder, True, append(500), 11.0)  # audio 1000-1500 ms relayed at 11.0
    message(
        recorder, False, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1200}, 11.5
    )
    created = {"type": "response.created", "response": {"id": "r1", "status": "in_progress"}}
    message(recorder, False, created, 11.6)
    message(
        recorder,
        False,
        {"type": "response.output_audio_transcript.delta", "response_id": "r1", "delta": "hi"},
        11.9,
    )
    message(
        recorder,
        False,
        {"type": "response.output_audio.delta", "response_id": "r1", "delta": "AAAA"},
        12.0,
    )
    message(
        recorder,
        False,
        {"type": "response.output_audio.delta", "response_id": "r1", "delta": "AAAA"},
        12.1,
    )
    (done,) = [
        r
        for r in message(
            recorder,
            False,
            {"type": "response.done", "response": {"id": "r1", "status": "completed"}},
            13.0,
        )
        if isinstance(r, ResponseDone)
    ]
    assert done.time_to_first_text_ms == pytest.approx(300)
    assert done.time_to_first_audio_ms == pytest.approx(400)
    assert done.turn_latency_ms == pytest.approx(500)  # speech_stopped 11.5 → first audio 12.0
    assert done.voice_to_voice_ms == pytest.approx(1000)  # audio at 1200 ms relayed 11.0 → 12.0
    metrics = Metrics(CollectorRegistry())
    observe(metrics, "gpt-realtime", "k", [done])
    get = metrics.registry.get_sample_value
    assert get(
        "openai_realtime_response_duration_seconds_sum", {"model": "gpt-realtime", "api": "ga"}
    ) == pytest.approx(1.4)
    assert get(
        "openai_realtime_voice_to_voice_seconds_sum", {"model": "gpt-realtime", "api": "ga"}
    ) == pytest.approx(1.0)
    assert (
        get(
            "openai_realtime_turn_latency_seconds_bucket",
            {"model": "gpt-realtime", "api": "ga", "le": "0.5"},
        )
        == 1
    )


def test_response_without_speech_has_no_turn_latency():
    recorder = SessionRecorder(
        SessionOpened("s", datetime(2026, 1, 1), "ga", "/v1/realtime", "full")
    )
    message(recorder, False, {"type": "response.created", "response": {"id": "r1"}}, 1.0)
    message(
        recorder,
        False,
        {"type": "response.output_audio.delta", "response_id": "r1", "delta": "AAAA"},
        1.2,
    )
    (done,) = [
        r
        for r in message(
            recorder,
            False,
            {"type": "response.done", "response": {"id": "r1", "status": "completed"}},
            2.0,
        )
        if isinstance(r, ResponseDone)
    ]
    assert (done.turn_latency_ms, done.voice_to_voice_ms) == (None, None)
    assert done.time_to_first_audio_ms == pytest.approx(200)


def scrape(proxy: ProxyProcess, accept: str = "") -> tuple[str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{proxy.metrics_port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request) as response:
        return response.headers["Content-Type"], response.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(values: dict, metric: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in values.items()
        if n == metric and all(dict(ls).get(k) == want for k, want in labels.items())
    )


async def test_metrics_equal_the_recorded_numbers(
    run_proxy: Callable[..., ProxyProcess], db_url: str
):
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        proxy = run_proxy(server.base_url, db_url)
        await run_conversation(proxy.base_url, [], [])
        # The writer commits in batches: wait until the queue-depth gauge shows it drained.
        deadline = time.monotonic() + 10
        while True:
            content_type, text = scrape(proxy)
            if total(samples(text), "openai_realtime_recorder_queue_depth") == 0:
                break
            assert time.monotonic() < deadline, "the writer never drained its queue"
            await asyncio.sleep(0.05)
        om_type, om_text = scrape(proxy, "application/openmetrics-text; version=1.0.0")
        health = urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/healthz").read()
        assert proxy.stop() == 0
    assert content_type.startswith("text/plain")
    assert om_type.startswith("application/openmetrics-text")
    assert om_text.rstrip().endswith("# EOF")
    assert health == b"ok\n"
    values = samples(text)
    engine = make_engine(db_url)
    with engine.connect() as connection:
        responses = list(connection.execute(select(table(Response))))
        limits = list(connection.execute(select(table(RateLimit)).order_by(table(RateLimit).c.id)))
        transcriptions = list(connection.execute(select(table(Transcription))))
    assert total(values, "openai_realtime_responses_total") == len(responses)
    assert (
        total(
            values, "openai_realtime_responses_total", status="cancelled", reason="client_cancelled"
        )
        == 1
    )
    assert total(values, "openai_realtime_tokens_total") == sum(r.total_tokens for r in responses)
    assert total(values, "openai_realtime_tokens_total", cached="true") == sum(
        r.cached_tokens for r in responses
    )
    assert total(values, "openai_realtime_cost_usd_total", kind="response") == pytest.approx(
        sum(r.cost_usd for r in responses)
    )
    assert all(r.cost_usd is not None for r in responses)
    assert total(values, "openai_realtime_cost_usd_total", kind="transcription") == pytest.approx(
        sum(t.cost_usd for t in transcriptions)
    )
    assert total(values, "openai_realtime_transcription_tokens_total") == sum(
        t.total_tokens for t in transcriptions
    )
    assert (
        total(values, "openai_realtime_rate_limit_remaining", name="tokens") == limits[-1].remaining
    )
    assert (
        total(values, "openai_realtime_rate_limit_limit", name="tokens") == limits[-1].limit_value
    )
    assert total(values, "openai_realtime_errors_total", code="invalid_value") == 1
    with_audio = [r for r in responses if r.time_to_first_audio_ms is not None]
    assert total(values, "openai_realtime_time_to_first_audio_seconds_count") == len(with_audio) > 0
    assert total(values, "openai_realtime_time_to_first_audio_seconds_sum") == pytest.approx(
        sum(r.time_to_first_audio_ms for r in with_audio) / 1000
    )
    assert total(values, "openai_realtime_sessions_total", model="gpt-realtime") == 1
    assert total(values, "openai_realtime_recorder_queue_depth") == 0
    assert all("id" not in dict(labels) for _name, labels in values)


def test_model_labels_a_client_makes_up_are_other():
    metrics = Metrics(CollectorRegistry())
    usage = protocol.response_usage({"input_tokens": 5, "output_tokens": 2})
    done = ResponseDone("s", "r1", datetime(2026, 1, 1), "completed", usage=usage)
    transcribed = TranscriptionRecord(
        "s", datetime(2026, 1, 1), None, "made-up-asr", None, "duration", seconds=2.0
    )
    for n in range(3):
        observe(metrics, f"made-up-{n}", "k", [done, transcribed])
    observe(metrics, "gpt-realtime-2025-08-28", "k", [done], reported={"gpt-realtime-2025-08-28"})
    labels = {
        sample.labels["model"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if "model" in sample.labels
    }
    assert labels == {"other", "gpt-realtime-2025-08-28"}


# Every family the proxy exposes with `--metric-properties team,tier`: name, type and label names
# in order, as declared before the metrics became a table (docs/metrics.md names; dashboards and
# alerts depend on them). Help texts may change; these may not.
EXPOSED_FAMILIES = {
    ("openai_realtime_sessions", "counter", ("model", "api")),
    ("openai_realtime_session_duration_seconds", "histogram", ("model", "api")),
    ("openai_realtime_events", "counter", ("direction", "type", "api")),
    ("openai_realtime_event_bytes", "counter", ("direction",)),
    ("openai_realtime_responses", "counter", ("model", "status", "reason")),
    (
        "openai_realtime_tokens",
        "counter",
        ("model", "direction", "modality", "cached", "team", "tier"),
    ),
    (
        "openai_realtime_transcription_tokens",
        "counter",
        ("model", "direction", "modality", "team", "tier"),
    ),
    ("openai_realtime_transcription_audio_seconds", "counter", ("model",)),
    ("openai_realtime_cost_usd", "counter", ("model", "kind", "api", "team", "tier")),
    ("openai_realtime_rate_limit_limit", "gauge", ("name", "key")),
    ("openai_realtime_rate_limit_remaining", "gauge", ("name", "key")),
    ("openai_realtime_rate_limit_reset_seconds", "gauge", ("name", "key")),
    ("openai_realtime_errors", "counter", ("model", "type", "code", "api")),
    ("openai_realtime_response_duration_seconds", "histogram", ("model", "api")),
    ("openai_realtime_time_to_first_audio_seconds", "histogram", ("model", "api")),
    ("openai_realtime_time_to_first_text_seconds", "histogram", ("model", "api")),
    ("openai_realtime_turn_latency_seconds", "histogram", ("model", "api")),
    ("openai_realtime_voice_to_voice_seconds", "histogram", ("model", "api")),
    ("openai_realtime_billable_seconds", "counter", ("model", "kind")),
    ("openai_realtime_context_usage_ratio", "histogram", ("model",)),
    ("openai_realtime_unrecorded_upgrades", "counter", ("path",)),
    ("openai_realtime_upgrade_failures", "counter", ("status",)),
    ("openai_realtime_calls", "counter", ("api", "transport", "outcome")),
    ("openai_realtime_observer_attach_failures", "counter", ("reason",)),
    ("openai_realtime_recorder_dropped_events", "counter", ("reason",)),
    ("openai_realtime_recorder_write_seconds", "histogram", ()),
    ("openai_realtime_recorder_parse_errors", "counter", ("direction",)),
    ("openai_realtime_recorder_handover_anomalies", "counter", ("kind",)),
    ("openai_realtime_recorder_db_errors", "counter", ()),
    ("openai_realtime_recorder_build", "info", ("version",)),
    ("openai_realtime_recorder_queue_depth", "gauge", ()),
    ("openai_realtime_recorder_queue_capacity", "gauge", ()),
    ("openai_realtime_recorder_database_available", "gauge", ()),
    ("openai_realtime_sessions_active", "gauge", ("model", "api")),
}


class IdleWriter:
    depth = 0
    capacity = 10
    alive = True
    failing_since: float | None = None


def test_exposed_names_types_and_labels_are_the_declared_ones():
    metrics = Metrics(CollectorRegistry(), property_labels=("team", "tier"))
    metrics.watch(IdleWriter(), lambda: {("gpt-realtime", "ga"): 1})
    # One series per labelled metric, so every family shows its label names in a scrape.
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    exposed = set()
    for family in metrics.registry.collect():
        labels = max(
            (tuple(k for k in s.labels if k != "le") for s in family.samples), key=len, default=()
        )
        exposed.add((family.name, family.type, labels))
    assert exposed == EXPOSED_FAMILIES


def test_build_info_is_the_cli_version():
    metrics = Metrics(CollectorRegistry())
    labels = {"version": rtrec.__version__}
    assert metrics.registry.get_sample_value("openai_realtime_recorder_build_info", labels) == 1
