"""The README documents every setting, environment variable, addon option and metric."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy.test import taddons
from prometheus_client import CollectorRegistry

from proxy.addon import Relay
from recorder.metrics import Metrics
from rtrec.cli import build_parser
from rtrec.settings import DASHBOARD_SETTINGS, SIMULATE_SETTINGS, UP_SETTINGS
from storage.db import make_engine
from storage.writer import Writer

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("setting", UP_SETTINGS, ids=lambda s: s.name)
def test_every_proxy_and_up_setting_is_documented(setting):
    assert f"`{setting.flag}`" in README
    assert f"`{setting.env_var()}`" in README


@pytest.mark.parametrize(
    ("settings", "prefix"),
    [(DASHBOARD_SETTINGS[1:], "RTREC_DASHBOARD_"), (SIMULATE_SETTINGS, "RTREC_SIMULATE_")],
)
def test_dashboard_and_simulate_settings_are_documented(settings, prefix):
    for setting in settings:
        assert f"`{setting.env_var(prefix)}`" in README


def test_every_command_is_documented():
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert commands is not None
    for name in commands:
        assert f"`rtrec {name}" in README, name


def test_every_addon_option_is_documented():
    recorder = Relay()
    with taddons.context(recorder) as tctx:
        names = [name for name in tctx.options.keys() if name.startswith("rtrec_")]  # noqa: SIM118
    assert len(names) == 15
    for name in names:
        assert f"`{name}`" in README


def test_every_metric_is_documented():
    metrics = Metrics(CollectorRegistry())
    writer = Writer(make_engine("sqlite://"))
    metrics.watch(writer, lambda: {("m", "ga"): 1})
    suffix = {"counter": "_total", "info": "_info"}
    names = {f.name + suffix.get(f.type, "") for f in metrics.registry.collect()}
    assert len(names) >= 12
    for name in names:
        assert f"`{name}`" in README, name
