"""Headless Chromium and a real Streamlit server for the dashboard's browser tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashboard.launch import streamlit_command
from tests.support.net import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


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


@contextlib.contextmanager
def served(db_url: str, log: Path) -> Iterator[str]:
    """`streamlit run dashboard/app.py` exactly as `run_dashboard` starts it, on a free port."""
    port = free_port()
    env = {**os.environ, "RTREC_DB": db_url}
    with log.open("wb") as out:
        process = subprocess.Popen(
            streamlit_command("127.0.0.1", port), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium driven by chromedriver, with its profile in `profile`."""
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
        f"--user-data-dir={profile}",
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
        WebDriverWait(driver, 60, poll_frequency=0.25).until(ready)
        WebDriverWait(driver, 60, poll_frequency=0.25).until(finished)
        # Read again once the script has run: parts drawn after the expected strings count too.
        return str(WebDriverWait(driver, 60, poll_frequency=0.25).until(ready))
    except Exception:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"missing {expected} in:\n{body}") from None


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


# Text of every visible table cell and header (the grids keep an accessible copy in the page).
CELLS_JS = """
return [...document.querySelectorAll('[data-testid="stDataFrame"]')]
  .filter(f => f.offsetParent !== null)
  .map(f => {
    const scroller = f.querySelector('.dvn-scroller') || f;
    return {cells: [...f.querySelectorAll('th, td')].map(c => c.textContent),
            client: scroller.clientHeight, scroll: scroller.scrollHeight};
  });
"""


def tables(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Each visible table's cell texts and whether it scrolls inside."""
    found: list[dict[str, Any]] = driver.execute_script(CELLS_JS)
    return found


TEXT_WIDTH_JS = """
const c = document.createElement('canvas').getContext('2d');
const body = getComputedStyle(document.body);
c.font = body.fontSize + ' ' + body.fontFamily;
return c.measureText(arguments[0]).width;
"""


def text_px(driver: webdriver.Chrome, text: str) -> float:
    """How wide `text` is in the grid's font, as its canvas draws it."""
    return float(driver.execute_script(TEXT_WIDTH_JS, text))


SHOTS = Path("/tmp/dash-shots")


def shoot(driver: webdriver.Chrome, name: str) -> None:
    """A screenshot to look at, under /tmp/dash-shots."""
    SHOTS.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(SHOTS / f"{name}.png"))
