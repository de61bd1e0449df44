"""The dashboard at 1366x768 in headless Chromium: links, the latency waterfall, ids, tables."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from dashboard.charts import PHASE_COLOURS, WATERFALL_MAX_PX
from dashboard.ui import COLUMN_WIDTHS
from storage.models import RealtimeSession
from tests.support.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    open_tab,
    page_text,
    settled,
    shoot,
    tables,
)
from tests.support.dashboard import record, record_turns, rows

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium"
)
MANY_TURNS = 20  # more rows than fit the waterfall's box


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The test conversation (6 turns), a 20-turn session and a 1-turn replay of the first."""
    folder = tmp_path_factory.mktemp("screen")
    db_url = f"sqlite:///{folder / 'rtrec.db'}"
    for log_dir in ("talk", "long", "replay"):
        (folder / log_dir).mkdir()
    asyncio.run(record(db_url, folder / "talk"))
    (talk,) = rows(db_url, RealtimeSession)
    asyncio.run(record_turns(db_url, folder / "long", MANY_TURNS))
    asyncio.run(record_turns(db_url, folder / "replay", 1, replay_of=talk.id))
    talk, long, replay = rows(db_url, RealtimeSession)  # in start order
    return {"db_url": db_url, "folder": folder, "talk": talk, "long": long, "replay": replay}


def no_dialog(driver: webdriver.Chrome) -> None:
    dialogs = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDialog"]')
    assert not [d.text for d in dialogs if d.is_displayed()]


# ----------------------------------------------------------------------------- 1: links


@pytest.mark.parametrize("path", ["/session?session={id}", "/?session={id}"])
def test_session_links_open_the_session_without_a_dialog(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any], path: str
):
    """The Sessions table's link (`session?session=ID`) and the older `/?session=ID`."""
    session_id = recorded["talk"].id
    browser.get(dashboard_url + path.format(id=session_id))
    page_text(browser, "Turns (responses)", "What is the capital of France?")
    settled(browser)
    shoot(browser, "1-link-" + ("root" if path.startswith("/?") else "session"))
    no_dialog(browser)
    assert browser.current_url == f"{dashboard_url}/session?session={session_id}"


# ----------------------------------------------------------------------------- 2: waterfall

# The visible waterfall's axes and legend: each text with its box, and the chart's own box.
WATERFALL_JS = """
const chart = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
  .find(e => e.offsetParent !== null && e.querySelector('svg'));
const svg = chart.querySelector('svg');
const rect = e => { const r = e.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
const texts = (root, css) => [...root.querySelectorAll(css)]
  .map(t => ({text: t.textContent, box: rect(t)}));
const axes = [...svg.querySelectorAll('g.role-axis')].map(a => ({
  title: texts(a, '.role-axis-title text'), labels: texts(a, '.role-axis-label text')}));
let box = chart.parentElement;
while (box && box.scrollHeight <= box.clientHeight + 1 && box !== document.body) {
  box = box.parentElement;
}
return {svg: rect(svg), axes: axes, legend: texts(svg, '.role-legend-label text'),
        scroller: {client: box.clientHeight, scroll: box.scrollHeight,
                   page: box === document.scrollingElement || box === document.body}};
"""


def inside(box: dict[str, float], outer: dict[str, float]) -> bool:
    return all(
        (box[side] >= outer[side] - 1) if side in ("top", "left") else box[side] <= outer[side] + 1
        for side in ("top", "bottom", "left", "right")
    )


def waterfall(driver: webdriver.Chrome, url: str, session_id: str, name: str) -> dict[str, Any]:
    driver.get(f"{url}/session?session={session_id}")
    page_text(driver, "Turns (responses)")
    settled(driver)
    open_tab(driver, "Latency")
    driver.execute_script(
        "document.querySelector('[data-testid=\"stVegaLiteChart\"] svg').scrollIntoView()"
    )
    shoot(driver, f"2-waterfall-{name}")
    found: dict[str, Any] = driver.execute_script(WATERFALL_JS)
    return found


@pytest.mark.parametrize(("session", "turns"), [("replay", 1), ("talk", 6), ("long", MANY_TURNS)])
def test_waterfall_has_a_labelled_row_per_turn_and_a_legend_per_phase(
    browser: webdriver.Chrome,
    dashboard_url: str,
    recorded: dict[str, Any],
    session: str,
    turns: int,
):
    chart = waterfall(browser, dashboard_url, recorded[session].id, session)
    (y_axis,) = [a for a in chart["axes"] if [t["text"] for t in a["title"]] == ["turn"]]
    labels = y_axis["labels"]
    assert [label["text"] for label in labels] == [str(n) for n in range(1, turns + 1)]
    tops = [label["box"]["top"] for label in labels]
    assert all(b - a >= 18 for a, b in itertools.pairwise(tops))  # rows, not hairlines
    titles = [t for a in chart["axes"] for t in a["title"]]
    assert any("ms" in t["text"] for t in titles)
    assert all(inside(t["box"], chart["svg"]) for t in titles)  # no title cut off
    assert [t["text"] for t in chart["legend"]] == list(PHASE_COLOURS)
    assert all(inside(t["box"], chart["svg"]) for t in chart["legend"])
    height = chart["svg"]["bottom"] - chart["svg"]["top"]
    assert height >= 18 * turns + 60
    if turns == MANY_TURNS:  # capped: the chart scrolls inside its box, not the page
        assert not chart["scroller"]["page"]
        assert chart["scroller"]["client"] <= WATERFALL_MAX_PX
        assert chart["scroller"]["scroll"] > chart["scroller"]["client"]


# ----------------------------------------------------------------------------- 3: id prefixes


def test_session_page_takes_a_unique_prefix_and_shows_the_id_to_copy(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    session_id = recorded["talk"].id
    browser.get(f"{dashboard_url}/session?session={session_id[:13]}")
    body = page_text(browser, "Turns (responses)", session_id)
    settled(browser)
    shoot(browser, "3-session-prefix")
    assert "There is no session" not in body
    assert browser.current_url.endswith(f"session={session_id}")  # bookmarkable in full
    (block,) = [
        c
        for c in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stCode"]')
        if c.text.strip() == session_id
    ]
    assert block.find_elements(By.CSS_SELECTOR, 'button[aria-label="Copy to clipboard"]')


def test_compare_page_takes_unique_prefixes(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    a, b = recorded["talk"].id, recorded["replay"].id
    browser.get(f"{dashboard_url}/compare?a={a[:13]}&b={b[:13]}")
    body = page_text(browser, "Session totals", a, b)
    settled(browser)
    shoot(browser, "3-compare-prefix")
    assert "no session" not in body.lower()


def test_an_ambiguous_prefix_asks_for_more(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    shared = recorded["talk"].id[:4]  # three sessions started within a minute share it
    assert recorded["long"].id.startswith(shared)
    browser.get(f"{dashboard_url}/session?session={shared}")
    page_text(browser, "starts more than one session id")


# ----------------------------------------------------------------------------- 10: cosmetics


def test_latency_tables_show_a_dash_for_what_nobody_saw(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    waterfall(browser, dashboard_url, recorded["replay"].id, "text-only")  # no audio at all
    cells = [c for t in tables(browser) for c in t["cells"]]
    assert "voice-to-voice" in cells
    assert "None" not in cells
    assert "—" in cells
    body = page_text(browser, "median and 95th percentile")
    assert "voice-to-voice: the user stops speaking" in body


def test_compare_totals_fit_with_units_and_a_legend(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    a, b = recorded["talk"].id, recorded["replay"].id
    browser.get(f"{dashboard_url}/compare?a={a}&b={b}")
    body = page_text(browser, "Session totals", "Turn by turn")
    settled(browser)
    shoot(browser, "10-compare")
    totals, turns = tables(browser)[:2]
    assert totals["scroll"] <= totals["client"] + 1  # no scrolling inside the totals
    cost = totals["cells"][totals["cells"].index("cost") + 1]
    assert cost.startswith("$")
    assert all(re.fullmatch(r"[\d,]+ ms|—", c) for c in totals["cells"] if c.endswith(" ms"))
    assert not [c for c in totals["cells"] if re.fullmatch(r"\d+\.\d+", c)]
    assert "None" not in totals["cells"] + turns["cells"]
    assert re.search(r"\d+%", " ".join(turns["cells"]))  # similarity as a percent
    assert "ttfa: time to first audio" in body
    assert "v2v: voice-to-voice" in body


def test_sessions_table_marks_replays_and_fits_model_names(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    browser.get(dashboard_url)
    page_text(browser, "3 sessions match")
    settled(browser)
    shoot(browser, "10-sessions")
    (listed,) = tables(browser)
    assert "replay of" in listed["cells"]
    assert recorded["talk"].id[:13] in listed["cells"]  # the replay's original
    model_px = browser.execute_script(  # in the grid's font, as its canvas draws it
        "const c = document.createElement('canvas').getContext('2d');"
        "c.font = getComputedStyle(document.body).fontSize + ' ' "
        "+ getComputedStyle(document.body).fontFamily;"
        "return c.measureText('gpt-4o-transcribe').width;"
    )
    assert COLUMN_WIDTHS["model"] >= model_px + 16  # 8 px of padding each side


OVERVIEW_LEGENDS_JS = """
return [...document.querySelectorAll('[data-testid="stVegaLiteChart"] .role-legend-label text')]
  .map(t => t.textContent);
"""


def test_overview_legends_are_not_cut(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    browser.get(f"{dashboard_url}/overview")
    page_text(browser, "Overview", "Latency percentiles")
    settled(browser)
    browser.execute_script(  # the cost chart, whose legend names the transcription model
        "document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')[2].scrollIntoView()"
    )
    shoot(browser, "10-overview")
    labels = browser.execute_script(OVERVIEW_LEGENDS_JS)
    assert "gpt-4o-mini-transcribe (transcription)" in labels
    assert not [label for label in labels if label.endswith("…")]


# The tick labels of every visible axis titled "turn".
TURN_TICKS_JS = """
return [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
  .filter(e => e.offsetParent !== null)
  .flatMap(e => [...e.querySelectorAll('g.role-axis')])
  .filter(a => [...a.querySelectorAll('.role-axis-title text')].some(t => t.textContent === 'turn'))
  .flatMap(a => [...a.querySelectorAll('.role-axis-label text')].map(t => t.textContent));
"""


def test_turn_axis_ticks_are_whole_numbers(
    browser: webdriver.Chrome, dashboard_url: str, recorded: dict[str, Any]
):
    browser.get(f"{dashboard_url}/session?session={recorded['replay'].id}")
    page_text(browser, "Turns (responses)")
    settled(browser)
    open_tab(browser, "Usage")
    shoot(browser, "10-usage-one-turn")
    labels = browser.execute_script(TURN_TICKS_JS)
    assert "1" in labels
    assert not [label for label in labels if re.fullmatch(r"\d+\.0+", label)]
