"""The dashboard served by a real Streamlit server and read in headless Chromium via selenium."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver

from storage.models import RealtimeSession, Response
from tests.support.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    OVERFLOW_JS,
    SCREEN,
    chromium,
    open_tab,
    page_text,
    settled,
    stop,
    wait_healthy,
)
from tests.support.dashboard import KEY, done_usages, record, rows
from tests.support.net import free_port

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium"
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{folder / 'rtrec.db'}"
    sent = asyncio.run(record(db_url, folder))
    (session,) = rows(db_url, RealtimeSession)
    return {"db_url": db_url, "sent": sent, "session_id": session.id, "folder": folder}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


def test_session_link_opens_the_conversation(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any], tmp_path: Path
):
    sent = recorded["sent"]
    answer = next(e["text"] for e in sent if e["type"] == "response.output_text.done")
    heard = next(
        e["transcript"]
        for e in sent
        if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    first = done_usages(sent)[0]["usage"]
    browser.get(f"{dashboard_url}/?session={recorded['session_id']}")
    body = page_text(
        browser,
        "Turns (responses)",
        "What is the capital of France?",
        answer,
        heard,
        "get_weather",
        "barge-in (turn_detected)",
        f"in {first['input_tokens']:,} (text",
        recorded["session_id"],
    )
    assert recorded["session_id"] in body
    assert f"Turns (responses)\n{len(done_usages(sent))}" in body
    assert f"in {first['input_tokens']:,} (text" in body
    assert "barge-in (turn_detected)" in body
    assert KEY not in browser.page_source

    shot = tmp_path / "session.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    with Image.open(shot) as image:
        assert image.size[0] >= 1000
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 50  # None: more colours than counted


def test_session_list_links_to_the_session_page(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    browser.get(dashboard_url)
    page_text(browser, "Sessions", "1 session matches")
    browser.get(f"{dashboard_url}/session?session={recorded['session_id']}")
    page_text(browser, "Turns (responses)", "What is the capital of France?")


def test_overview_page_shows_totals(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    responses = rows(recorded["db_url"], Response)
    inputs = sum(r.input_tokens or 0 for r in responses)
    browser.get(f"{dashboard_url}/overview")
    body = page_text(browser, "Overview", "Input tokens", f"{inputs:,}")
    assert "Errors by code" in body


def test_run_dashboard_serves_deep_links_and_stops_on_sigterm(
    browser: webdriver.Chrome, recorded: dict[str, Any], tmp_path: Path
):
    """The first request to a fresh server is a deep link; then SIGTERM reaches Streamlit."""
    port, log = free_port(), tmp_path / "launch.log"
    script = (
        "import sys\nfrom dashboard.launch import run_dashboard\n"
        f"sys.exit(run_dashboard({recorded['db_url']!r}, '127.0.0.1', {port}))\n"
    )
    with log.open("wb") as out:
        wrapper = subprocess.Popen(
            [sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT
        )
    streamlit = 0
    try:
        wait_healthy(port, wrapper, log)
        children = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read_text().split()
        assert len(children) == 1
        streamlit = int(children[0])
        browser.get(f"http://127.0.0.1:{port}/overview")
        body = page_text(browser, "Overview", "Input tokens")
        assert "unavailable" not in body  # the pages are app.py's, not a legacy pages/ folder
        assert stop(wrapper) == 0
        assert not Path(f"/proc/{streamlit}").exists()
    finally:
        stop(wrapper)
        if streamlit and Path(f"/proc/{streamlit}").exists():
            os.kill(streamlit, signal.SIGKILL)


@pytest.mark.parametrize(
    ("path", "tab", "expected"),
    [
        ("/", None, "1 session matches"),
        ("/?session={session_id}", None, "What is the capital of France?"),
        ("/?session={session_id}", "Usage", "Turns (responses)"),
        ("/?session={session_id}", "Latency", "Turns (responses)"),
        ("/?session={session_id}", "Events", "Turns (responses)"),
        ("/overview", None, "Latency percentiles"),
    ],
)
def test_no_table_is_cut_off_on_a_1366_screen(
    browser: webdriver.Chrome,
    dashboard_url: str,
    recorded: dict[str, Any],
    tmp_path: Path,
    path: str,
    tab: str | None,
    expected: str,
):
    browser.set_window_size(*SCREEN)
    browser.get(dashboard_url + path.format(session_id=recorded["session_id"]))
    page_text(browser, expected)
    settled(browser)
    if tab is not None:
        open_tab(browser, tab)
    name = tab or ("session" if "session=" in path else path.strip("/")) or "sessions"
    shot = tmp_path / f"{name.lower()}.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as image:
        assert image.size[0] <= SCREEN[0]
    assert (
        browser.execute_script(
            "return document.querySelectorAll('[data-testid=\"stDataFrame\"]').length"
        )
        > 0
    )
    assert browser.execute_script(OVERFLOW_JS) == []
