"""`rtrec up` and `rtrec demo` as a user runs them: real processes, real ports, real signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import select

from storage.db import make_engine
from storage.models import RealtimeSession, Response, table
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
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert code == 0, output
    assert f"OPENAI_BASE_URL=http://127.0.0.1:{ports['listen']}/v1" in output
    assert f"dashboard  http://127.0.0.1:{ports['dashboard']}" in output
    assert f"metrics    http://127.0.0.1:{ports['metrics']}/metrics" in output


def test_demo_fills_a_fresh_database(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "rtrec.cli", "demo", "--exit", "--db", db_url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "9 session(s) (2 GPT-Live) recorded into" in result.stdout
    assert "websockets" not in result.stderr  # the simulator's connection lines stay quiet
    assert f"rtrec dashboard --db {db_url}" in result.stdout  # --exit says where to look
    assert f"rtrec sessions --db {db_url}" in result.stdout
    engine = make_engine(db_url)
    with engine.connect() as connection:
        sessions = list(connection.execute(select(table(RealtimeSession))))
        responses = list(connection.execute(select(table(Response))))
    realtime = [s for s in sessions if s.api in ("ga", "beta")]
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


def test_up_announces_a_warm_dashboard_and_its_banner_comes_last(tmp_path: Path):
    ports = {name: free_port() for name in ("listen", "dashboard")}
    output = tmp_path / "up.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "rtrec.cli", "up", "--db", str(tmp_path / "up.db")),
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
        # Announced means answering: the first fetch of the first page works, no retry.
        page = urllib.request.urlopen(f"http://127.0.0.1:{ports['dashboard']}/", timeout=5)
        assert page.status == 200
        time.sleep(1)  # anything the children still print would land after the banner
        announced = output.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert announced.rstrip().endswith(f"OPENAI_BASE_URL=http://127.0.0.1:{ports['listen']}/v1")
    for foreign in ("You can now view", "Uvicorn", "Local URL"):
        assert foreign not in announced
