"""Metric labels of session properties: the operator's values, else the first 50 seen."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import Engine

from handover.properties import metric_property_values
from recorder.property_labels import (
    OTHER,
    PROPERTY_LABEL_CHARS,
    PROPERTY_LABEL_VALUES,
    PropertyLabels,
    property_labels,
)
from rtrec.cli import main
from storage.records import SessionOpened
from storage.writer import Writer
from tests.support.proxy import ProxyProcess

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KEY = "sk-test-property-labels-0000"


def test_listed_values_are_labels_and_the_rest_other():
    labels = PropertyLabels(["customer"], {"customer": ["acme", "globex"]})
    assert labels.values({"customer": "acme"}) == ("acme",)
    assert labels.values({"customer": "globex"}) == ("globex",)
    assert labels.values({"customer": "initech"}) == (OTHER,)
    assert labels.values({}) == ("",)


def test_with_a_list_no_client_takes_the_places_of_real_customers():
    labels = PropertyLabels(["customer"], {"customer": ["acme"]})
    for n in range(200):
        labels.label("customer", f"spam{n}")
    assert labels.label("customer", "acme") == "acme"


def test_without_a_list_the_first_50_values_are_labels():
    labels = PropertyLabels(["team"])
    firsts = [labels.label("team", f"t{n}") for n in range(PROPERTY_LABEL_VALUES)]
    assert firsts == [f"t{n}" for n in range(PROPERTY_LABEL_VALUES)]
    assert labels.label("team", "late") == OTHER
    assert labels.label("team", "t7") == "t7"


def test_labels_are_cut_to_64_characters():
    labels = PropertyLabels(["team"])
    long = "x" * 100
    assert labels.label("team", long) == "x" * PROPERTY_LABEL_CHARS
    assert labels.label("team", long + "y") == "x" * PROPERTY_LABEL_CHARS  # one value, one place
    assert labels.label("team", "other-team") == "other-team"


@pytest.mark.parametrize("listed", [False, True])
def test_a_literal_other_is_labelled_apart_from_the_overflow(listed: bool):
    labels = PropertyLabels(["team"], {"team": ["other", "a"]} if listed else None)
    assert labels.label("team", "other") == "=other"
    assert labels.label("team", "=other") == ("==other" if not listed else OTHER)
    if not listed:
        for n in range(PROPERTY_LABEL_VALUES):
            labels.label("team", f"t{n}")
    assert labels.label("team", "zzz") == OTHER


def opened(n: int, team: str) -> SessionOpened:
    started = NOW + timedelta(seconds=n)
    return SessionOpened(f"s{n}", started, "ga", "/", "full", properties=(("team", team),))


def test_a_restart_keeps_the_first_values_and_admits_no_new_ones(engine: Engine):
    writer = Writer(engine, flush_interval_s=0.01)
    writer.start()
    for n in range(PROPERTY_LABEL_VALUES + 10):  # 60 values: the first 50 have labels
        writer.submit([opened(n, f"team{n:02d}")])
    writer.close()
    restarted = property_labels(engine, "team", "")
    assert restarted.label("team", "team00") == "team00"
    assert restarted.label("team", f"team{PROPERTY_LABEL_VALUES - 1}") == "team49"
    assert restarted.label("team", "team55") == OTHER
    assert restarted.label("team", "brand-new") == OTHER


def test_a_property_with_a_list_is_a_label_without_metric_properties(engine: Engine):
    labels = property_labels(engine, "", "customer=acme")
    assert labels.names == ("customer",)


def test_values_are_given_inline_or_in_a_file(tmp_path: Path):
    inline = metric_property_values("customer=acme,globex; env=prod")
    assert inline == {"customer": ("acme", "globex"), "env": ("prod",)}
    listed = tmp_path / "values.txt"
    listed.write_text("# customers we bill\ncustomer=acme,globex\n\nenv=prod\n")
    assert metric_property_values(str(listed)) == inline


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("model=a", "already a label"),
        ("cust omer=a", "is not NAME=VALUE"),
        ("/nonexistent/values.txt", "cannot be read"),
    ],
)
def test_bad_values_stop_the_start_with_one_line(capsys: Any, text: str, problem: str):
    with pytest.raises(SystemExit):
        main(["proxy", "--metric-property-values", text])
    assert problem in capsys.readouterr().err


async def test_listed_values_label_the_cost_counter_end_to_end(
    run_proxy: Callable[..., ProxyProcess], fake_server: Any, sqlite_db_url: str
):
    proxy = run_proxy(
        fake_server.base_url, sqlite_db_url, "--metric-property-values", "customer=acme"
    )
    for customer in ("acme", "initech", "other"):
        headers = {"Rtrec-Property-Customer": customer}
        client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
        async with client.realtime.connect(model="gpt-realtime", extra_headers=headers) as conn:
            await conn.recv()  # session.created
            await conn.send({"type": "response.create"})
            while (await conn.recv()).type != "response.done":
                pass
    for label in ("acme", "other"):  # a literal `other` is not listed: it is `other` too
        proxy.wait_for_metric(
            f'openai_realtime_cost_usd_total{{api="ga",customer="{label}",kind="response",'
            f'model="gpt-realtime"}}'
        )
    assert "initech" not in proxy.metrics_text()
    proxy.stop()
