"""The proxy's one table of options makes the CLI, the addon's mitmproxy options and the README."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions
from mitmproxy.master import Master

from handover.config import RecorderConfig
from handover.options import ADDON_OPTIONS, CLI_OPTIONS, PROXY_OPTIONS, RECORDER_OPTIONS, Option
from proxy.addon import Relay
from proxy.master import ProxyConfig, relay_master
from rtrec.cli import build_parser, main
from rtrec.settings import UP_SETTINGS, markdown_table, resolve_environment

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_options_table() -> str:
    """The README's table under "Options of `rtrec proxy` and `rtrec up`", as written."""
    found = re.search(r"^\| option \| variable \| default \| meaning \|\n(?:\|.*\n)+", README, re.M)
    assert found is not None, "the README has no table of options"
    return found.group(0).rstrip("\n")


def test_readme_table_is_the_table():
    assert readme_options_table() == markdown_table(UP_SETTINGS), (
        "the README's table of options is not the one handover/options.py makes: "
        "paste the output of `uv run python -m rtrec.settings` into README.md"
    )


def test_readme_table_lists_every_option_with_its_variable_and_default():
    rows = [line.split(" | ") for line in readme_options_table().splitlines()[2:]]
    documented = {row[0].strip("| `"): (row[1].strip("`"), row[2]) for row in rows}
    assert list(documented) == [option.flag for option in UP_SETTINGS]
    for option in UP_SETTINGS:
        variable, default = documented[option.flag]
        assert variable == option.env_var()
        if option.default == "":  # nothing to show: the README says what empty means
            assert default in ("empty", option.doc_default)
        else:
            assert default == f"`{option.default}`"


@pytest.fixture
def relay() -> Iterator[Master]:
    """mitmproxy as `rtrec proxy` runs it, with the recorder addon loaded and nothing started."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def make() -> Master:
        return relay_master(Relay())

    try:
        yield loop.run_until_complete(make())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_every_addon_option_is_a_mitmproxy_option_with_the_table_default(relay: Master):
    registered = dict(relay.options.items())
    assert {name for name in registered if name.startswith("rtrec_")} == {
        option.mitmproxy_name for option in ADDON_OPTIONS
    }
    for option in ADDON_OPTIONS:
        mitmproxy_option = registered[option.mitmproxy_name]
        assert relay.options.default(option.mitmproxy_name) == option.default
        assert mitmproxy_option.typespec is option.type
        assert mitmproxy_option.choices == option.choices
        assert mitmproxy_option.help == option.help


def cli_refusal(capsys: pytest.CaptureFixture[str], flag: str, text: str) -> str:
    with pytest.raises(SystemExit):
        main(["proxy", flag, text])
    line = capsys.readouterr().err.strip()
    prefix = f"rtrec proxy: argument {flag}: "
    assert line.startswith(prefix), line
    return line.removeprefix(prefix).removesuffix(" (see rtrec proxy --help)")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("metrics-port", "65536"),
        ("metrics-port", "-1"),
        ("retention-days", "-1"),
        ("queue-size", "0"),
        ("flush-interval-ms", "0"),
        ("metric-properties", "model"),
        ("metric-properties", "a b"),
        ("pricing", "/no/such/prices.toml"),
    ],
)
def test_the_addon_refuses_what_the_cli_refuses_with_the_same_message(
    relay: Master, capsys: pytest.CaptureFixture[str], name: str, text: str
):
    option = next(option for option in ADDON_OPTIONS if option.name == name)
    cli_message = cli_refusal(capsys, option.flag, text)
    with pytest.raises(exceptions.OptionsError) as refused:
        relay.options.set(f"{option.mitmproxy_name}={text}")  # as `mitmdump --set` does
    assert str(refused.value) == f"{option.mitmproxy_name}: {cli_message}"
    assert relay.options.default(option.mitmproxy_name) == getattr(
        relay.options, option.mitmproxy_name
    )


def fields(config: type[Any], leave_out: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [
        (field.name, str(field.type))
        for field in dataclasses.fields(config)
        if field.name not in leave_out
    ]


def names_and_types(options: tuple[Option, ...]) -> list[tuple[str, str]]:
    return [(option.dest, option.type.__name__) for option in options]


def test_proxy_config_has_a_field_for_each_cli_option():
    assert fields(ProxyConfig) == names_and_types(CLI_OPTIONS)


def test_recorder_config_has_a_field_for_each_recorder_option():
    added_by_the_relay = ("socket", "proxy_id", "restarts")
    assert fields(RecorderConfig, added_by_the_relay) == names_and_types(RECORDER_OPTIONS)


def test_relay_passes_every_addon_option_it_has_a_flag_for():
    # A value no other option has, so that each must come from its own field.
    values: dict[str, Any] = {
        option.dest: number if option.type is int else f"{option.dest} value"
        for number, option in enumerate(CLI_OPTIONS)
    }
    passed = ProxyConfig(**values).mitmproxy_options("/run/recorder.sock")
    for option in ADDON_OPTIONS:
        expected = values[option.dest] if option.cli else "/run/recorder.sock"
        assert passed[option.mitmproxy_name] == expected


@pytest.mark.parametrize("command", ["proxy", "up"])
def test_help_shows_every_flag_with_its_variable_and_default(
    command: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "200")
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert isinstance(commands, dict)
    shown = " ".join(commands[command].format_help().split())
    options = UP_SETTINGS if command == "up" else CLI_OPTIONS
    for option in options:
        assert f"{option.flag} " in shown
        assert f"[{option.env_var()}, default: {option.default}]" in shown


def test_every_option_name_is_distinct():
    names = [option.name for option in PROXY_OPTIONS]
    assert len(names) == len(set(names))


LOWER_FLOORS = ("proxy", "dashboard", "storage", "simulator")


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


@pytest.mark.parametrize("package", LOWER_FLOORS)
def test_nothing_below_the_cli_imports_it(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            assert module.partition(".")[0] != "rtrec", (path, module)


@pytest.mark.parametrize(
    ("argv", "environment", "expected"),
    [
        ([], None, "off"),
        (["--redact-pii"], None, "on"),
        (["--redact-pii", "off"], None, "off"),
        ([], "1", "on"),
        ([], "false", "off"),
        (["--redact-pii", "off"], "on", "off"),
    ],
)
def test_an_on_off_option_is_a_plain_flag_too(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], environment: str | None, expected: str
):
    if environment is not None:
        monkeypatch.setenv("RTREC_REDACT_PII", environment)
    args = build_parser().parse_args(["proxy", *argv])
    resolve_environment(args)
    assert args.redact_pii == expected
