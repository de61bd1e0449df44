"""The dashboard's server process imports what the pages use before it serves a browser."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.serve import serve_without_nagle
from rtrec.services import dashboard_process
from storage.db import open_for_writing
from tests.support.browser import wait_healthy
from tests.support.net import free_port

# Compiled extensions show in a process's memory map once their package is imported.
PAGE_LIBRARIES = ("/pandas/_libs/", "/pyarrow/", "/sqlalchemy/")


def test_the_server_has_the_pages_libraries_loaded_before_any_session(tmp_path: Path):
    db = tmp_path / "served.db"
    open_for_writing(str(db)).dispose()
    port, log = free_port(), tmp_path / "dashboard.log"
    with log.open("wb") as out, dashboard_process(str(db), "127.0.0.1", port, log=out) as server:
        wait_healthy(port, server, log)  # the health check is no script run: no page has run
        mapped = Path(f"/proc/{server.pid}/maps").read_text()
    assert [lib for lib in PAGE_LIBRARIES if lib not in mapped] == []


def test_preloading_imports_every_page_module_and_says_nothing():
    probe = (
        "import sys\nfrom dashboard.serve import preload\npreload()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('dashboard.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(done.stdout.split())
    assert {"dashboard.data", "dashboard.charts", "dashboard.ui", "dashboard.detail"} <= loaded
    assert "dashboard.app" not in loaded  # the entry script runs under Streamlit, not on import
    assert done.stderr == ""  # no "No runtime found" from st.cache_data before the server starts


def test_the_server_s_connections_send_without_nagle_s_delay(monkeypatch: pytest.MonkeyPatch):
    # With Nagle on, each keep-alive response's body waited 40 ms for the browser's delayed ACK.
    from streamlit.web.server.starlette import starlette_server

    monkeypatch.setattr(starlette_server, "_bind_socket", starlette_server._bind_socket)
    serve_without_nagle()
    listening = starlette_server._bind_socket("127.0.0.1", 0, 8)
    with listening, socket.create_connection(listening.getsockname(), timeout=5):
        listening.setblocking(True)
        accepted, _ = listening.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_start_up_heap_is_out_of_the_collector_s_reach():
    # Streamlit collects every generation after each script run: over the imported libraries,
    # that held up the run's last message (the end of "Running…") by 0.15 s.
    probe = (
        "import gc\nfrom dashboard.serve import preload, settle_heap\npreload()\nsettle_heap()\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    frozen, collectable = map(int, done.stdout.split())
    assert frozen > 50_000  # pandas, SQLAlchemy, Streamlit and the pages' modules
    assert collectable < frozen / 20
