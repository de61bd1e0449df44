"""Every panel query of the dashboard against a real Prometheus scraping a real `rtrec proxy`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import pytest_asyncio
import yaml
from websockets.exceptions import InvalidStatus

from simulator.server import REFUSE_UPGRADE_KEY, FakeRealtimeServer
from tests.support.deploy import (
    PROMETHEUS_YML,
    SPEC_METRICS,
    concrete,
    dashboard,
    panel_queries,
    spec_metric,
)
from tests.support.live_recording import LiveScript, run_session
from tests.support.net import free_port
from tests.support.proxy import proxy_runner

PROMETHEUS = "/usr/bin/prometheus"
KEY = "sk-test-deploy-0123456789abcdef"
SAMPLE_RATE = 24_000
CHUNK_MS = 100
TIMEOUT_S = 30


def prometheus_api(base_url: str, path: str, **params: str) -> Any:
    url = f"{base_url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:  # 400/422 carry the PromQL error as JSON
        body = json.load(exc)
    return body


@contextlib.contextmanager
def running_prometheus(tmp_path: Path, metrics_port: int) -> Iterator[str]:
    """Debian's prometheus on loopback, scraping the proxy every second with the shipped job.

    It evaluates the shipped alerting rules every second too (their paths made absolute, as the
    config is written elsewhere).
    """
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_YML.parent / name) for name in config["rule_files"]]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{log_path.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{base_url}/-/ready", timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"prometheus not ready:\n{log_path.read_text()}")


async def scraped_after(prometheus: str, moment: float) -> None:
    """Wait for a successful scrape of the proxy that started after `moment` (Unix time)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        body = await asyncio.to_thread(
            prometheus_api, prometheus, "/api/v1/query", query='timestamp(up{job="rtrec"} == 1)'
        )
        result = body["data"]["result"]
        if result and float(result[0]["value"][1]) > moment:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("Prometheus did not scrape the proxy")


def speech(ms: int, *, silence_ms: int = 0) -> list[str]:
    """A 440 Hz tone, then silence, as base64 pcm16 24 kHz chunks of CHUNK_MS."""
    tone = [int(8000 * math.sin(2 * math.pi * 440 * i / SAMPLE_RATE)) for i in range(ms * 24)]
    audio = struct.pack(f"<{len(tone)}h", *tone) + bytes(silence_ms * 48)
    step = SAMPLE_RATE * 2 * CHUNK_MS // 1000
    return [base64.b64encode(audio[i : i + step]).decode() for i in range(0, len(audio), step)]


async def until(conn: Any, event_type: str) -> Any:
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            event = await conn.recv()
            if event.type == event_type:
                return event


async def text_turn(conn: Any) -> None:
    await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
    await until(conn, "session.updated")
    await conn.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "What is the capital of France?"}],
        }
    )
    await conn.response.create()
    await until(conn, "response.done")


async def voice_turn(conn: Any) -> None:
    """Push-to-talk: no turn detection, the client commits and asks for the answer."""
    audio_input = {
        "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
        "transcription": {"model": "gpt-4o-mini-transcribe"},
        "turn_detection": None,
    }
    session = {"type": "realtime", "output_modalities": ["audio"], "audio": {"input": audio_input}}
    await conn.session.update(session=session)
    await until(conn, "session.updated")
    for chunk in speech(1000):
        await conn.input_audio_buffer.append(audio=chunk)
    await conn.input_audio_buffer.commit()
    await conn.response.create()
    await until(conn, "response.done")


async def server_vad_turn(conn: Any) -> None:
    """Hands-free: server VAD hears the speech end, commits and answers (whisper-1 transcribes)."""
    audio_input = {
        "transcription": {"model": "whisper-1"},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 200},
    }
    await conn.session.update(session={"type": "realtime", "audio": {"input": audio_input}})
    await until(conn, "session.updated")
    for chunk in speech(1000, silence_ms=500):
        await conn.input_audio_buffer.append(audio=chunk)
    await until(conn, "input_audio_buffer.speech_stopped")
    await until(conn, "response.done")


async def cancelled_response_and_error(conn: Any) -> None:
    await conn.response.create(response={"output_modalities": ["audio"]})
    created = await until(conn, "response.created")
    await conn.response.cancel(response_id=created.response.id)
    done = await until(conn, "response.done")
    assert done.response.status == "cancelled"
    await conn.send_raw(json.dumps({"type": "no.such.event", "event_id": "evt_deploy_bad"}))
    await until(conn, "error")


async def conversation(base_url: str) -> None:
    """Every kind of traffic the dashboard shows, through the official SDK."""
    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await until(conn, "session.created")
        await text_turn(conn)
        await voice_turn(conn)
        await server_vad_turn(conn)
        await cancelled_response_and_error(conn)
    await run_session(base_url, LiveScript(turns=1))  # GPT-Live, with a delegation
    refused = openai.AsyncOpenAI(api_key=REFUSE_UPGRADE_KEY, base_url=base_url)
    with pytest.raises((InvalidStatus, openai.OpenAIError), match="403"):
        async with refused.realtime.connect(model="gpt-realtime"):
            pass


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scraped(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    """A real proxy, scraped by a real Prometheus, after two rounds of traffic.

    Two rounds, each followed by a scrape, so every counter and histogram has grown between two
    samples and rate() sees it. One session stays open meanwhile, for the active-sessions gauge.
    """
    tmp = tmp_path_factory.mktemp("deploy")
    db_url = f"sqlite:///{tmp / 'rtrec.db'}"
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        with proxy_runner(tmp) as run_proxy:
            proxy = run_proxy(server.base_url, db_url)
            with running_prometheus(tmp, proxy.metrics_port) as prometheus:
                await scraped_after(prometheus, time.time())
                client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
                async with client.realtime.connect(model="gpt-realtime") as idle:
                    await until(idle, "session.created")
                    # Until Prometheus itself has seen every once-per-conversation histogram grow
                    # between two of its samples (under load that can take a third round).
                    for round_number in range(1, 5):
                        await conversation(proxy.base_url)
                        await observed(proxy.metrics_port, round_number)
                        await scraped_after(prometheus, time.time() + 0.5)
                        if round_number >= 2 and await grown_in_prometheus(prometheus):
                            break
                    yield {"prometheus": prometheus, "proxy": proxy}


ONCE_PER_CONVERSATION = (
    "openai_realtime_session_duration_seconds_count",
    "openai_realtime_turn_latency_seconds_count",
    "openai_realtime_voice_to_voice_seconds_count",
    "openai_realtime_context_usage_ratio_count",
)


async def observed(metrics_port: int, conversations: int) -> None:
    """Wait until the proxy has observed what `conversations` conversations produce."""
    counts: dict[str, float] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
                .read()
                .decode()
            )
        )
        counts = {
            name: sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(name + "{")
            )
            for name in ONCE_PER_CONVERSATION
        }
        if all(count >= conversations for count in counts.values()):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"after {conversations} conversation(s) the proxy observed {counts}")


async def grown_in_prometheus(prometheus: str) -> bool:
    for name in ONCE_PER_CONVERSATION:
        body = await asyncio.to_thread(
            prometheus_api, prometheus, "/api/v1/query", query=f"sum(increase({name}[1m])) > 0"
        )
        if not body["data"]["result"]:
            return False
    return True


def problem(body: dict[str, Any]) -> str | None:
    """Why a /api/v1/query answer would leave a panel empty, or None."""
    if body.get("status") != "success":
        return f"error: {body.get('error')}"
    result = body["data"]["result"]
    if not result:
        return "no data"
    if not any(math.isfinite(float(sample["value"][1])) for sample in result):
        return "only NaN/Inf"
    return None


def exported_spec_metrics(metrics_port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    return {metric for name in names if (metric := spec_metric(name))}


@pytest.mark.asyncio(loop_scope="module")
async def test_every_panel_query_has_data_in_a_real_prometheus(scraped: dict[str, Any]):
    failures = []
    for title, expr in panel_queries(dashboard()):
        body = await asyncio.to_thread(
            prometheus_api, scraped["prometheus"], "/api/v1/query", query=concrete(expr)
        )
        why = problem(body)
        if why:
            failures.append(f"{title}: {concrete(expr)}: {why}")
    missing = set(SPEC_METRICS) - exported_spec_metrics(scraped["proxy"].metrics_port)
    assert not failures, "\n".join([*failures, f"no series in /metrics: {sorted(missing)}"])


@pytest.mark.asyncio(loop_scope="module")
async def test_model_variable_offers_the_recorded_model(scraped: dict[str, Any]):
    body = await asyncio.to_thread(
        prometheus_api,
        scraped["prometheus"],
        "/api/v1/label/model/values",
        **{"match[]": "openai_realtime_sessions_total"},
    )
    # GPT-Live names its model in the first frame, after the session opened: it is counted
    # then, so the variable offers the model and no `unknown`.
    assert sorted(body["data"]) == ["gpt-live-1", "gpt-realtime"]


LIVE_SERIES = {
    'sum by (api) (openai_realtime_sessions_total{api="live"})': "api",
    'sum by (kind) (openai_realtime_billable_seconds_total{kind="active"})': "kind",
    'sum by (kind) (openai_realtime_cost_usd_total{api="live",kind="session_seconds"})': "kind",
    'sum by (api) (openai_realtime_time_to_first_audio_seconds_count{api="live"})': "api",
    'sum by (model) (openai_realtime_context_usage_ratio_count{model="gpt-live-1"})': "model",
}


@pytest.mark.asyncio(loop_scope="module")
async def test_gpt_live_series_are_in_prometheus(scraped: dict[str, Any]):
    """Sessions, billed seconds, both kinds of cost, turn latency and context usage of GPT-Live."""
    for expr in LIVE_SERIES:
        body = await asyncio.to_thread(
            prometheus_api, scraped["prometheus"], "/api/v1/query", query=expr
        )
        values = [float(sample["value"][1]) for sample in body["data"]["result"]]
        assert values, expr
        assert values[0] > 0, expr


def shipped_alert_names() -> set[str]:
    groups = yaml.safe_load((PROMETHEUS_YML.parent / "alerts.yml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


@pytest.mark.asyncio(loop_scope="module")
async def test_prometheus_evaluates_every_shipped_rule_without_error(scraped: dict[str, Any]):
    body = await asyncio.to_thread(prometheus_api, scraped["prometheus"], "/api/v1/rules")
    rules = [rule for group in body["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules if rule["type"] == "alerting"} == shipped_alert_names()
    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert unhealthy == {}


@pytest.mark.asyncio(loop_scope="module")
async def test_the_refused_upgrade_fires_its_alert_and_nothing_else_fires(scraped: dict[str, Any]):
    """The traffic had one 403 upgrade per round; the proxy and its recorder stayed healthy."""
    body = await asyncio.to_thread(prometheus_api, scraped["prometheus"], "/api/v1/alerts")
    firing = {
        (alert["labels"]["alertname"], alert["labels"].get("status"))
        for alert in body["data"]["alerts"]
        if alert["state"] == "firing"
    }
    assert firing == {("RtrecUpgradesRefused", "403")}
