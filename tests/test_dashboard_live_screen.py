"""A recorded GPT-Live session's page at 1366x768 in headless Chromium: conversation, billing,
delegations, latency waterfall and both audio players, nothing cut off at the side."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.support.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    OVERFLOW_JS,
    open_tab,
    page_text,
    settled,
    shoot,
)
from tests.support.live_recording import LiveScript, of_type, record_live

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium"
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One GPT-Live session of two turns, recorded through rtrec proxy from rtrec simulate."""
    folder = tmp_path_factory.mktemp("live-screen")
    db_url = f"sqlite:///{folder / 'rtrec.db'}"
    (live,) = asyncio.run(record_live(db_url, folder, [LiveScript(turns=2)]))
    return {"db_url": db_url, "folder": folder, **live}


SHOW_TAB_JS = """
const shown = [...document.querySelectorAll('[data-testid="stTabPanel"]')]
  .find(p => p.offsetParent !== null);
shown.scrollIntoView();
"""


def open_session(driver: webdriver.Chrome, url: str, recorded: dict[str, Any]) -> str:
    driver.get(f"{url}/session?session={recorded['session_id']}")
    body = page_text(driver, "Billable seconds", "End reason", "gpt-live-1")
    settled(driver)
    return body


def test_live_session_page_shows_conversation_and_billing(browser, dashboard_url, recorded):
    body = open_session(browser, dashboard_url, recorded)
    shoot(browser, "live-1-header")
    browser.execute_script(SHOW_TAB_JS)
    shoot(browser, "live-1-conversation")
    (closed,) = of_type(recorded["sent"], "session.closed")
    assert f"{closed['usage']['seconds']:.1f} s" in body
    assert closed["reason"] in body
    answer = "".join(
        e["delta"] for e in of_type(recorded["sent"], "session.output_transcript.delta")
    )
    assert answer.split()[0] in body
    assert "turn 2 · " in body
    assert browser.execute_script(OVERFLOW_JS) == []


def test_delegations_tab_lists_the_delegated_model(browser, dashboard_url, recorded):
    open_session(browser, dashboard_url, recorded)
    open_tab(browser, "Billing & delegations")
    browser.execute_script(SHOW_TAB_JS)
    shoot(browser, "live-2-delegations")
    assert browser.execute_script(OVERFLOW_JS) == []
    page_text(browser, "Delegated Responses and Decisions work")


def test_latency_tab_draws_a_row_per_turn(browser, dashboard_url, recorded):
    open_session(browser, dashboard_url, recorded)
    open_tab(browser, "Latency")
    browser.execute_script(
        "document.querySelector('[data-testid=\"stVegaLiteChart\"] svg').scrollIntoView()"
    )
    shoot(browser, "live-3-latency")
    labels = browser.execute_script(
        'return [...document.querySelectorAll(\'[data-testid="stVegaLiteChart"] svg '
        "g.role-axis-label text')].map(t => t.textContent)"
    )
    assert {"1", "2"} <= set(labels)


def test_audio_tab_has_a_player_per_side(browser, dashboard_url, recorded):
    open_session(browser, dashboard_url, recorded)
    open_tab(browser, "Audio")
    browser.execute_script(SHOW_TAB_JS)
    shoot(browser, "live-4-audio")
    players = [p for p in browser.find_elements(By.TAG_NAME, "audio") if p.is_displayed()]
    assert len(players) == 2
    durations = [browser.execute_script("return arguments[0].duration", p) for p in players]
    assert all(d and d > 0.5 for d in durations), durations
