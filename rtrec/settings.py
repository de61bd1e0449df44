"""Every command-line setting, declared once: flag, environment variable, default, help, parser."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from storage.db import DEFAULT_DB_URL


def port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return value


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def upstream_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s):// or ws(s):// URL with a host"
        )
    # mitmproxy's reverse mode speaks http(s) upstream and upgrades from there.
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl().rstrip("/")


def metric_properties(text: str) -> str:
    from proxy.tags import metric_property_names

    try:
        return ",".join(metric_property_names(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def readable_file(text: str) -> str:
    if text and not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"file {text!r} not found")
    if text and not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"file {text!r} is not readable")
    return text


def is_loopback(host: str) -> bool:
    """True for `localhost` and 127.0.0.0/8 or ::1 addresses; names that need DNS are not."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _reachable_from_outside(host: str) -> bool:
    if is_loopback(host):
        return False
    # Dotted numbers that are no address (256.1.1.1) are refused at start: nothing listens there.
    return _is_address(host) if host.replace(".", "").isdigit() else True


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


#: The listening settings whose address, when not loopback, exposes recordings to the network.
EXPOSING_HOSTS = ("listen-host", "metrics-host", "dashboard-host", "host")


def exposure_warning(hosts: dict[str, str]) -> str | None:
    """One line when any of `hosts` (flag name -> address) listens beyond this machine, else None.

    Nothing rtrec serves asks who is asking: whoever reaches the dashboard reads transcripts and
    plays audio, whoever reaches /metrics scrapes it, whoever reaches the proxy relays through it.
    """
    exposed = [f"--{name} {host}" for name, host in hosts.items() if _reachable_from_outside(host)]
    if not exposed:
        return None
    return (
        f"warning: {', '.join(exposed)} reaches beyond this machine, and transcripts, audio and "
        "/metrics are unauthenticated: listen on 127.0.0.1 unless the network is trusted"
    )


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    choices: Sequence[str] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def env_var(self, prefix: str = "RTREC_") -> str:
        return prefix + self.dest.upper()


DB = Setting("db", DEFAULT_DB_URL, "SQLAlchemy database URL (postgresql+psycopg://… to share)")

PROXY_SETTINGS = (
    Setting("listen-host", "127.0.0.1", "where clients connect"),
    Setting("listen-port", 8080, "port clients connect to", port),
    Setting(
        "upstream",
        "https://api.openai.com",
        "reverse-proxy target (Azure: https://<res>.openai.azure.com)",
        upstream_url,
    ),
    Setting(
        "mode",
        "reverse",
        "reverse, or regular for HTTPS_PROXY-style clients",
        choices=("reverse", "regular"),
    ),
    DB,
    Setting("metrics-host", "127.0.0.1", "where /metrics and /healthz listen"),
    Setting("metrics-port", 9464, "Prometheus endpoint port; 0 turns it off", port),
    Setting(
        "record",
        "full",
        "full: events, text, audio; text: no audio bytes; metadata: no content at all",
        choices=("full", "text", "metadata"),
    ),
    Setting("pricing", "", "TOML file that overrides or adds model prices", readable_file),
    Setting(
        "retention-days",
        0,
        "delete sessions older than this every hour; 0 keeps all",
        non_negative_int,
    ),
    Setting("queue-size", 100_000, "records buffered before the recorder drops", positive_int),
    Setting(
        "flush-interval-ms",
        250,
        "longest a record waits before its batch is committed",
        positive_int,
    ),
    Setting(
        "metric-properties",
        "",
        "session properties (comma-separated) that label the cost and token counters",
        metric_properties,
    ),
    Setting(
        "workers",
        1,
        "relay processes sharing the listen port (SO_REUSEPORT), all feeding one recorder",
        positive_int,
    ),
)


UP_SETTINGS = (
    *PROXY_SETTINGS,
    Setting("dashboard-host", "127.0.0.1", "where the dashboard listens"),
    Setting("dashboard-port", 8501, "dashboard port", port),
)

# `rtrec dashboard` and `rtrec simulate` name these --host/--port, with their own variables.
DASHBOARD_SETTINGS = (
    DB,
    Setting("host", "127.0.0.1", "where the dashboard listens"),
    Setting("port", 8501, "dashboard port", port),
)
SIMULATE_SETTINGS = (
    Setting("host", "127.0.0.1", "where the simulator listens (loopback only)"),
    Setting("port", 8765, "simulator port", port),
)


@dataclass(frozen=True)
class FromEnvironment:
    """A setting's value taken from its environment variable, checked once the command is known."""

    setting: Setting
    env_var: str
    raw: str

    def resolve(self) -> Any:
        try:
            value = self.setting.parse(self.raw)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{self.env_var}: {exc}") from None
        if self.setting.choices and value not in self.setting.choices:
            choices = ", ".join(self.setting.choices)
            raise argparse.ArgumentTypeError(
                f"{self.env_var}: {self.raw!r} is not one of {choices}"
            )
        return value


def resolve_environment(args: argparse.Namespace) -> None:
    """Replace values that came from environment variables by their parsed form."""
    for name, value in vars(args).items():
        if isinstance(value, FromEnvironment):
            setattr(args, name, value.resolve())


def add_settings(
    parser: argparse.ArgumentParser, settings: Sequence[Setting], env_prefix: str = "RTREC_"
) -> None:
    """Add `settings` as flags whose defaults come from the environment when set there."""
    for setting in settings:
        env_var = setting.env_var("RTREC_" if setting is DB else env_prefix)
        default: Any = setting.default
        if env_var in os.environ:
            default = FromEnvironment(setting, env_var, os.environ[env_var])
        parser.add_argument(
            setting.flag,
            dest=setting.dest,
            default=default,
            type=setting.parse,
            choices=setting.choices,
            metavar=setting.dest.upper() if not setting.choices else None,
            help=f"{setting.help} [{env_var}, default: {setting.default}]",
        )
