"""The Calls and Call pages in Streamlit's AppTest: no calls yet, an unknown call id, and a call
whose create the upstream refused (recorded through a real proxy), which no session watched."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai
import pytest
from streamlit.testing.v1 import AppTest

from storage.models import Call
from tests.support.call_upstream import ANSWER_SDP, call_upstream
from tests.support.dashboard import rows
from tests.support.proxy import proxy_runner

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def page(db_url: str, monkeypatch: pytest.MonkeyPatch, path: str, **query: str) -> AppTest:
    monkeypatch.setenv("RTREC_DB", db_url)
    test = AppTest.from_file(APP, default_timeout=30)
    test.run()
    for name, value in query.items():
        test.query_params[name] = value
    test.switch_page(path).run()
    assert not test.exception, [e.value for e in test.exception]
    return test


def shown(test: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "code", "title")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(test, kind))


def test_no_calls_yet_says_how_calls_are_recorded(engine: Any, db_url: str, monkeypatch):
    text = shown(page(db_url, monkeypatch, "app_pages/calls.py"))
    assert "No calls recorded yet" in text
    assert "/v1/realtime/calls" in text


def test_an_unknown_call_id_is_a_warning(engine: Any, db_url: str, monkeypatch):
    text = shown(page(db_url, monkeypatch, "app_pages/call.py", call="rtc_nothing"))
    assert "There is no call" in text
    assert "rtc_nothing" in text


def test_a_refused_create_shows_its_status_and_no_conversation(
    db_url: str, tmp_path: Path, monkeypatch
):
    with call_upstream() as upstream, proxy_runner(tmp_path) as run:
        upstream.refuse_status = 401
        proxy = run(upstream.url, db_url)
        sdk = openai.OpenAI(api_key="sk-refused-0123456789", base_url=proxy.base_url, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            sdk.realtime.calls.create(sdp=ANSWER_SDP)
        deadline = time.monotonic() + 15
        while not (found := rows(db_url, Call)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    (call,) = found
    test = page(db_url, monkeypatch, "app_pages/call.py", call=call.id[:8])
    text = shown(test)
    assert call.id in text  # the prefix opened it; the full id is shown to copy
    assert "No session watched this call" in text
    (lifecycle,) = [frame.value for frame in test.dataframe]
    assert list(zip(lifecycle["step"], lifecycle["detail"], strict=True)) == [
        ("create failed", "HTTP 401"),
        ("ended", ""),
    ]
    assert test.query_params["call"] == call.id  # the address bar names the call in full
