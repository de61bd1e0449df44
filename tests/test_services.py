"""`rtrec up` and `rtrec demo` as a user runs them: real processes, real ports, real signals."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import make_engine
from storage.models import Call, RealtimeSession, Response, Transcription, table
from tests.support.net import free_port
from tests.support.proxy import wait_for_port


def test_up_serves_proxy_metrics_and_dashboard_and_stops_on_ctrl_c(tmp_path: Path):
    ports = {name: free_port() for name in ("listen", "metrics", "dashboard")}
    db_url = f"sqlite:///{tmp_path / 'up.db'}"
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtrec.cli",
            "up",
            "--db",
            db_url,
            "--listen-port",
            str(ports["listen"]),
            "--metrics-port",
            str(ports["metrics"]),
            "--dashboard-port",
            str(ports["dashboard"]),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        for port in ports.values():
            wait_for_port(port, process, tmp_path / "up.log")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics").read()
        assert b"openai_realtime_recorder_build_info" in metrics
        deadline = time.monotonic() + 60
        while True:  # Streamlit answers its health endpoint once the app server is up
            try:
                health = urllib.request.urlopen(
                    f"http://127.0.0.1:{ports['dashboard']}/_stcore/health"
                ).read()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health == b"ok"
        # The banner comes once the proxy is ready, which is a moment after its port opens:
        # Ctrl-C before it would stop `rtrec up` before it said anything (seen once in CI).
        banner = f"OPENAI_BASE_URL=http://127.0.0.1:{ports['listen']}/v1"
        while banner not in (tmp_path / "up.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert code == 0, output
    assert banner in output
    assert f"dashboard  http://127.0.0.1:{ports['dashboard']}" in output
    assert f"metrics    http://127.0.0.1:{ports['metrics']}/metrics" in output


@dataclass
class DemoRun:
    db_url: str
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`rtrec demo --exit` run once into a fresh SQLite file."""
    tmp_path = tmp_path_factory.mktemp("demo")
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "rtrec.cli", "demo", "--exit", "--db", db_url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return DemoRun(db_url, result)


def test_demo_fills_a_fresh_database(demo: DemoRun):
    db_url, result = demo.db_url, demo.result
    assert "10 session(s) (2 GPT-Live, 1 WebRTC call) recorded into" in result.stdout
    assert "websockets" not in result.stderr  # the simulator's connection lines stay quiet
    assert f"rtrec dashboard --db {db_url}" in result.stdout  # --exit says where to look
    assert f"rtrec sessions --db {db_url}" in result.stdout
    assert f"rtrec calls --db {db_url}" in result.stdout
    engine = make_engine(db_url)
    with engine.connect() as connection:
        sessions = list(connection.execute(select(table(RealtimeSession))))
        responses = list(connection.execute(select(table(Response))))
    realtime = [s for s in sessions if s.api in ("ga", "beta") and s.call_id is None]
    assert len(realtime) == 7
    assert len([s for s in sessions if s.api == "live"]) == 2
    assert {s.api for s in realtime} == {"ga", "beta"}
    assert all(s.ended_at is not None and s.close_code == 1000 for s in realtime)
    assert {(r.status, r.status_reason) for r in responses} >= {
        ("completed", None),
        ("cancelled", "turn_detected"),
    }
    # GPT-Live's delegated work runs on models without a built-in price: its cost stays NULL.
    realtime_ids = {s.id for s in realtime}
    assert all(r.cost_usd is not None for r in responses if r.session_id in realtime_ids)


def test_demo_records_a_webrtc_call_with_its_sideband(demo: DemoRun):
    sessions, responses, heard = table(RealtimeSession), table(Response), table(Transcription)
    engine = make_engine(demo.db_url)
    with engine.connect() as connection:
        (call,) = connection.execute(select(table(Call))).all()
        (sideband,) = connection.execute(select(sessions).where(sessions.c.call_id == call.id))
        answers = connection.execute(
            select(responses).where(responses.c.session_id == sideband.id)
        ).all()
        transcripts = connection.execute(
            select(heard.c.transcript).where(heard.c.session_id == sideband.id)
        ).scalars()
        assert len([t for t in transcripts if t]) == 2
    assert (call.transport, call.status, call.end_reason) == ("webrtc", "ended", "hung up")
    assert (sideband.call_role, sideband.ended_at is not None) == ("sideband", True)
    assert [r.status for r in answers] == ["completed", "completed"]
    assert all(r.total_tokens > 0 for r in answers)
    assert all(r.cost_usd > 0 for r in answers)
    assert f"WebRTC call {call.id}: 2 response(s)" in demo.result.stdout


def test_rtrec_calls_lists_the_demo_s_call(demo: DemoRun):
    listed = subprocess.run(
        [sys.executable, "-m", "rtrec.cli", "calls", "--json", "--db", demo.db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    (call,) = json.loads(listed.stdout)
    assert (call["transport"], call["status"], call["sessions"]) == ("webrtc", "ended", 1)
    assert call["cost_usd"] > 0


def test_up_with_a_busy_dashboard_port_refuses_before_it_announces(tmp_path: Path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        busy = other.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "rtrec.cli",
                "up",
                "--db",
                f"sqlite:///{tmp_path / 'up.db'}",
                "--listen-port",
                str(free_port()),
                "--metrics-port",
                "0",
                "--dashboard-port",
                str(busy),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    assert result.returncode != 0
    assert "rtrec is up" not in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert "--dashboard-port" in line
    assert str(busy) in line


@contextlib.contextmanager
def announced_up(tmp_path: Path, db: str) -> Iterator[tuple[dict[str, int], Path]]:
    """`rtrec up` on `db`, once its banner is out: its ports and its output; Ctrl-C after."""
    ports = {name: free_port() for name in ("listen", "dashboard")}
    output = tmp_path / "up.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "rtrec.cli", "up", "--db", db),
                *("--listen-port", str(ports["listen"]), "--metrics-port", "0"),
                *("--dashboard-port", str(ports["dashboard"])),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 120
        while "OPENAI_BASE_URL=" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        yield ports, output
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def test_up_announces_a_warm_dashboard_and_its_banner_comes_last(tmp_path: Path):
    with announced_up(tmp_path, str(tmp_path / "up.db")) as (ports, output):
        # Announced means answering: the first fetch of the first page works, no retry.
        page = urllib.request.urlopen(f"http://127.0.0.1:{ports['dashboard']}/", timeout=5)
        assert page.status == 200
        time.sleep(1)  # anything the children still print would land after the banner
        announced = output.read_text()
    assert announced.rstrip().endswith(f"OPENAI_BASE_URL=http://127.0.0.1:{ports['listen']}/v1")
    for foreign in ("You can now view", "Uvicorn", "Local URL"):
        assert foreign not in announced


def cache_lookups(dashboard_port: int, loader: str) -> dict[str, float]:
    """How often the dashboard's server found `dashboard.data.<loader>`'s answer cached ("hit")
    or computed it ("miss"), from Streamlit's own metrics."""
    url = f"http://127.0.0.1:{dashboard_port}/_stcore/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    found = re.findall(
        rf'^cache_lookups_total{{cache="dashboard\.data\.{loader}",'
        r'cache_type="st_cache_data",result="(\w+)"} (\S+)$',
        text,
        re.MULTILINE,
    )
    return {result: float(count) for result, count in found}


def test_up_runs_the_first_page_once_before_its_banner(demo: DemoRun, tmp_path: Path):
    # The first visitor then finds the server's first run of the page (imports, queries) done.
    with announced_up(tmp_path, demo.db_url) as (ports, _):
        lookups = cache_lookups(ports["dashboard"], "session_page")
    assert lookups == {"hit": 0, "miss": 1}


def test_demo_serving_says_only_its_own_lines_and_announces_a_warm_dashboard(tmp_path: Path):
    output = tmp_path / "demo.log"
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rtrec.cli", "demo", "--fast", "--db", db_url],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 180
        while "Ctrl-C stops everything" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        port = int(re.findall(r"dashboard  http://127\.0\.0\.1:(\d+)", output.read_text())[0])
        lookups = cache_lookups(port, "session_page")
        time.sleep(1)  # anything the children still print would land after the banner
        said = output.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert lookups == {"hit": 0, "miss": 1}  # its first page ran once, on the recording
    assert said.rstrip().endswith("Ctrl-C stops everything.")
    # Streamlit's start-up, the WebRTC peer's ICE checks, the SDK's requests: none of them.
    for foreign in ("You can now view", "Uvicorn", "aioice", "HTTP Request"):
        assert foreign not in said
