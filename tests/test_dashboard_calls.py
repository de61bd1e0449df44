"""WebRTC and SIP calls in the dashboard at 1366x768 in headless Chromium: the Calls list, one
call's lifecycle next to its conversation, and the call column of the Sessions list; the calls
are recorded through rtrec proxy from rtrec simulate."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from dashboard.ui import CALL_COLUMN_PX, CALL_ID_SHOWN
from storage.models import RealtimeSession
from tests.support.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    OVERFLOW_JS,
    page_text,
    settled,
    shoot,
    tables,
    text_px,
)
from tests.support.call_recording import APP_KEY
from tests.support.dashboard import rows
from tests.support.recorded_calls import REFER_TO, record_calls

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium"
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A Realtime WebRTC call and a GPT-Live SIP call, each watched by the app's sideband."""
    folder = tmp_path_factory.mktemp("calls")
    db_url = f"sqlite:///{folder / 'rtrec.db'}"
    calls = asyncio.run(record_calls(db_url, folder))
    sessions = {s.call_id: s.id for s in rows(db_url, RealtimeSession)}
    return {"db_url": db_url, "folder": folder, "calls": calls, "sessions": sessions}


def test_calls_page_lists_each_call_with_its_transport_status_cost_and_sessions(
    browser, dashboard_url, recorded
):
    webrtc, sip = recorded["calls"]["webrtc"], recorded["calls"]["sip"]
    browser.get(f"{dashboard_url}/calls")
    page_text(browser, "Calls", "2 calls")
    settled(browser)
    shoot(browser, "calls-1-list")
    (listed,) = tables(browser)
    cells = listed["cells"]
    assert browser.execute_script(OVERFLOW_JS) == []
    # A link cell's accessible text is its address: the page of that call.
    row = cells.index(f"call?call={webrtc}")
    assert cells.index(f"call?call={sip}") < row  # newest first: the SIP call came second
    assert cells[row + 1 : row + 5] == ["ga", "webrtc", "gpt-realtime", "ended"]
    assert "hung up" in cells[row:]
    assert cells[row + 8].startswith("$")  # its sideband's responses were priced
    assert cells[row + 9] == "1"  # one session watched it


def test_call_page_shows_the_lifecycle_next_to_the_conversation(browser, dashboard_url, recorded):
    sip = recorded["calls"]["sip"]
    browser.get(f"{dashboard_url}/call?call={sip[:12]}")  # a prefix names the call
    body = page_text(browser, "Lifecycle", "Conversation", "simulated answer from GPT-Live")
    settled(browser)
    shoot(browser, "calls-2-detail")
    assert sip in body  # the full id, in a block with a copy button
    assert browser.execute_script(OVERFLOW_JS) == []
    steps = tables(browser)[0]["cells"]  # time, step, detail, from: a row each
    timed = [i for i, cell in enumerate(steps) if re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", cell)]
    named = [(steps[i + 1], steps[i + 2]) for i in timed]
    assert ("first seen", "incoming SIP call") in named
    assert ("DTMF received", "1") in named
    assert ("DTMF sent", "#") in named
    assert ("referred", f"to {REFER_TO}") in named
    assert ("ended", "referred") in named
    lifecycle, talk = (
        browser.find_element(By.XPATH, f"//h3[contains(., '{title}')]")
        for title in ("Lifecycle", "Conversation")
    )
    assert lifecycle.rect["x"] < talk.rect["x"]  # side by side at 1366 px
    assert abs(lifecycle.rect["y"] - talk.rect["y"]) < 5
    session = recorded["sessions"][sip]
    link = browser.find_element(By.PARTIAL_LINK_TEXT, "Open session")
    assert link.get_attribute("href").endswith(f"/session?session={session}")
    assert APP_KEY not in browser.page_source


def test_sessions_list_shows_the_transport_and_call_of_each_sideband(
    browser, dashboard_url, recorded
):
    webrtc, sip = recorded["calls"]["webrtc"], recorded["calls"]["sip"]
    browser.get(dashboard_url)
    page_text(browser, "Sessions", "2 sessions match")
    settled(browser)
    shoot(browser, "calls-3-sessions")
    (listed,) = tables(browser)
    shown = [f"webrtc:{webrtc[:CALL_ID_SHOWN]}", f"sip:{sip[:CALL_ID_SHOWN]}"]
    assert set(shown) <= set(listed["cells"])
    assert browser.execute_script(OVERFLOW_JS) == []
    # The ids are random: a typical one (digits are of middling width) must fit, with 8 px of
    # padding each side.
    typical = f"webrtc:rtc_{'0' * (CALL_ID_SHOWN - len('rtc_'))}"
    assert text_px(browser, typical) + 16 <= CALL_COLUMN_PX
    browser.get(f"{dashboard_url}/session?session={recorded['sessions'][webrtc]}")
    page_text(browser, "sideband of call", webrtc)
    link = browser.find_element(By.LINK_TEXT, "open")
    assert link.get_attribute("href").endswith(f"/call?call={webrtc}")
