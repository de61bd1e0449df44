"""The dashboard served by a real Streamlit server and read in headless Chromium via selenium."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashboard.launch import streamlit_command
from storage.models import RealtimeSession, Response
from tests.support.dashboard import KEY, done_usages, record, rows
from tests.support.net import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
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


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dashboard exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"dashboard did not answer on {port}:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


@pytest.fixture(scope="module")
def dashboard_url(recorded: dict[str, Any]) -> Iterator[str]:
    """`streamlit run dashboard/app.py` exactly as `run_dashboard` starts it, on a free port."""
    port, log = free_port(), recorded["folder"] / "dashboard.log"
    env = {**os.environ, "RTREC_DB": recorded["db_url"]}
    with log.open("wb") as out:
        process = subprocess.Popen(
            streamlit_command("127.0.0.1", port), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1400",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    service = Service(str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        service.stop()


def page_text(driver: webdriver.Chrome, *expected: str) -> str:
    """The body text once every expected string is on the page (Streamlit renders over a socket)."""

    def ready(d: Any) -> str | None:
        body = str(d.find_element(By.TAG_NAME, "body").text)
        return body if all(text in body for text in expected) else None

    def finished(d: Any) -> bool:  # the "Running…" widget is gone once the script has run
        return not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')

    try:
        body = str(WebDriverWait(driver, 60, poll_frequency=0.25).until(ready))
        WebDriverWait(driver, 60, poll_frequency=0.25).until(finished)
        return body
    except Exception:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"missing {expected} in:\n{body}") from None


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
        browser, "Turns (responses)", "What is the capital of France?", answer, heard, "get_weather"
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


# Every table's scroller and the page itself, as wide as their boxes: nothing cut off at the side.
OVERFLOW_JS = """
const cut = [];
const page = document.documentElement;
if (page.scrollWidth > page.clientWidth + 1) {
  cut.push(`page ${page.scrollWidth}>${page.clientWidth}`);
}
const tables = '[data-testid="stDataFrame"], [data-testid="stTable"]';
for (const frame of document.querySelectorAll(tables)) {
  if (frame.offsetParent === null) continue;  // on a tab not shown
  const box = frame.getBoundingClientRect();
  const scroller = frame.querySelector('.dvn-scroller') || frame;
  if (scroller.scrollWidth > scroller.clientWidth + 1 || box.right > page.clientWidth + 1) {
    const head = (frame.innerText || '').slice(0, 40).replace(/\\s+/g, ' ');
    cut.push(`${head}: ${scroller.scrollWidth}>${scroller.clientWidth}, right ${box.right}`);
  }
}
return cut;
"""
SCREEN = (1366, 768)


def settled(driver: webdriver.Chrome) -> None:
    """Waits until no placeholder is left and the tables have had time to size their columns."""
    skeletons = '[data-testid="stSkeleton"], [data-testid="stStatusWidget"]'
    WebDriverWait(driver, 60, poll_frequency=0.25).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, skeletons)
    )
    time.sleep(1.5)  # glide-data-grid measures its columns after the first paint


def open_tab(driver: webdriver.Chrome, name: str) -> None:
    (tab,) = [t for t in driver.find_elements(By.CSS_SELECTOR, '[role="tab"]') if t.text == name]
    tab.click()
    WebDriverWait(driver, 30).until(lambda d: tab.get_attribute("aria-selected") == "true")
    settled(driver)


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
