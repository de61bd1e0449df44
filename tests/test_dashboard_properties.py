"""The dashboard's property filter (Sessions) and cost by property (Overview), in AppTest."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from storage.records import ResponseDone, SessionOpened
from storage.writer import Writer

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
NOW = datetime.now(UTC) - timedelta(hours=1)
TAGGED = {
    "s-acme-1": (("customer", "acme"), ("env", "prod")),
    "s-acme-2": (("customer", "acme"),),
    "s-globex": (("customer", "globex"),),
    "s-untagged": (),
}


@pytest.fixture
def tagged_db(engine: Engine, db_url: str) -> str:
    writer = Writer(engine)
    writer.start()
    for index, (session_id, properties) in enumerate(TAGGED.items()):
        started = NOW + timedelta(seconds=index)
        opened = SessionOpened(session_id, started, "ga", "/v1/realtime", "full")
        writer.submit([dataclasses.replace(opened, properties=properties)])
        usage: dict[str, int | None] = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        writer.submit(
            [ResponseDone(session_id, "r1", started, "completed", usage=usage, cost_usd=0.25)]
        )
    writer.close()
    return db_url


def run_app(monkeypatch: pytest.MonkeyPatch, db_url: str, page: str | None = None) -> AppTest:
    monkeypatch.setenv("RTREC_DB", db_url)
    test = AppTest.from_file(APP, default_timeout=30)
    test.run()
    if page is not None:
        test.switch_page(page).run()
    assert not test.exception, [e.value for e in test.exception]
    return test


def test_sessions_filter_by_a_property_value(monkeypatch: pytest.MonkeyPatch, tagged_db: str):
    test = run_app(monkeypatch, tagged_db)
    assert len(test.dataframe[0].value) == len(TAGGED)
    test.selectbox(key="sessions_property").set_value("customer").run()
    test.selectbox(key="sessions_property_value").set_value("acme").run()
    assert sorted(test.dataframe[0].value["session"]) == ["s-acme-1", "s-acme-2"]


def test_overview_groups_cost_and_tokens_by_a_property(
    monkeypatch: pytest.MonkeyPatch, tagged_db: str
):
    test = run_app(monkeypatch, tagged_db, page="app_pages/overview.py")
    grouped: Any = test.dataframe[-1].value
    rows = {row["customer"]: row for row in grouped.to_dict("records")}
    assert set(rows) == {"acme", "globex", "(not set)"}
    assert rows["acme"]["sessions"] == 2
    assert rows["acme"]["total_tokens"] == 30
    assert rows["acme"]["cost_usd"] == pytest.approx(0.5)
    test.selectbox(key="overview_property").set_value("env").run()
    rows = {row["env"]: row for row in test.dataframe[-1].value.to_dict("records")}
    assert rows["prod"]["sessions"] == 1
    assert rows["(not set)"]["sessions"] == 3
