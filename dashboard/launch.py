"""Runs the dashboard as a Streamlit server subprocess; `rtrec dashboard` and `rtrec up` call it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

APP = Path(__file__).with_name("app.py")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def streamlit_command(host: str, port: int) -> list[str]:
    """`streamlit run` through `dashboard.serve`, which imports the pages' modules first."""
    return [
        sys.executable,
        "-m",
        "dashboard.serve",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Installed code does not change under a running server: no file watching.
        "--server.fileWatcherType",
        "none",
        # A recording browser, not a Streamlit project: no "Deploy" button or developer menu.
        "--client.toolbarMode",
        "minimal",
    ]


def run_dashboard(db_url: str, host: str, port: int) -> int:
    """Serves the dashboard on host:port over `db_url` until it exits; returns its exit code.

    SIGINT and SIGTERM are passed on to Streamlit, which then shuts down on its own.
    """
    env = {**os.environ, "RTREC_DB": db_url}
    process = subprocess.Popen(streamlit_command(host, port), env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.kill()
            process.wait()
    return 128 - code if code < 0 else code
