"""The command line's settings: flags and `RTREC_*` variables from `handover/options.py`'s table.

The proxy's options are declared there, once; this module adds the settings only the CLI has
(the dashboard's and the simulator's addresses) and turns them all into argparse flags.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from handover.options import (
    CLI_OPTIONS,
    DB,
    Option,
    non_negative,
    port,
    positive,
    whole_number,
)

__all__ = [  # CLI_OPTIONS, DB and Option are the table's; the rest is this module's
    "CLI_OPTIONS",
    "DASHBOARD_PASSWORD_ENV",
    "DASHBOARD_SETTINGS",
    "DB",
    "EXPOSING_HOSTS",
    "SIMULATE_SETTINGS",
    "UP_SETTINGS",
    "Option",
    "add_settings",
    "exposure_warning",
    "markdown_table",
    "non_negative_int",
    "positive_int",
    "resolve_environment",
    "warn_if_exposed",
]


def argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` for argparse, which prints an ArgumentTypeError's message as it is."""

    def parse_argument(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_argument


positive_int = argparse_type(lambda text: positive(whole_number(text)))
non_negative_int = argparse_type(lambda text: non_negative(whole_number(text)))


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
# The dashboard's password variable (dashboard/auth.py reads it; the CLI only says if it is set).
DASHBOARD_PASSWORD_ENV = "RTREC_DASHBOARD_PASSWORD"  # noqa: S105 (a variable's name)
EXPOSING_HOSTS = ("listen-host", "metrics-host", "dashboard-host", "host")


def exposure_warning(hosts: dict[str, str], dashboard_password: bool = False) -> str | None:
    """One line when any of `hosts` (flag name -> address) listens beyond this machine, else None.

    /metrics and the proxy ask nobody; the dashboard asks only when `RTREC_DASHBOARD_PASSWORD`
    is set (`dashboard_password`), and the line says which.
    """
    exposed = [f"--{name} {host}" for name, host in hosts.items() if _reachable_from_outside(host)]
    if not exposed:
        return None
    if dashboard_password:
        who = (
            f"the dashboard asks for {DASHBOARD_PASSWORD_ENV}, but the proxy and /metrics are "
            "unauthenticated"
        )
    else:
        who = (
            f"transcripts, audio and /metrics are unauthenticated ({DASHBOARD_PASSWORD_ENV} "
            "is not set, so the dashboard asks for no password)"
        )
    return (
        f"warning: {', '.join(exposed)} reaches beyond this machine, and {who}: "
        "listen on 127.0.0.1 unless the network is trusted"
    )


def warn_if_exposed(args: argparse.Namespace) -> None:
    """Print `exposure_warning` for the listening flags in `args`, whatever the log level."""
    hosts = {name: getattr(args, name.replace("-", "_"), None) for name in EXPOSING_HOSTS}
    if getattr(args, "metrics_port", None) == 0:  # no metrics endpoint, nothing exposed there
        hosts.pop("metrics-host")
    warning = exposure_warning(
        {name: host for name, host in hosts.items() if host is not None},
        dashboard_password=bool(os.environ.get(DASHBOARD_PASSWORD_ENV)),
    )
    if warning:
        print(f"rtrec {args.command}: {warning}", file=sys.stderr, flush=True)


# The CLI's own settings are `Option`s like the proxy's; `rtrec proxy` takes the table's `cli` ones.
UP_SETTINGS = (
    *CLI_OPTIONS,
    Option(
        "dashboard-host",
        "127.0.0.1",
        "where the dashboard listens",
        doc="`rtrec up` only: where the dashboard listens",
    ),
    Option("dashboard-port", 8501, "dashboard port", port, doc="`rtrec up` only: dashboard port"),
)

# `rtrec dashboard` and `rtrec simulate` name these --host/--port, with their own variables.
DASHBOARD_SETTINGS = (
    DB,
    Option("host", "127.0.0.1", "where the dashboard listens"),
    Option("port", 8501, "dashboard port", port),
)
SIMULATE_SETTINGS = (
    Option("host", "127.0.0.1", "where the simulator listens (loopback only)"),
    Option("port", 8765, "simulator port", port),
)


@dataclass(frozen=True)
class FromEnvironment:
    """A setting's value taken from its environment variable, checked once the command is known."""

    setting: Option
    env_var: str
    raw: str

    def resolve(self) -> Any:
        try:
            value = self.setting.parse(self.raw)
        except ValueError as exc:
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
    parser: argparse.ArgumentParser, settings: Sequence[Option], env_prefix: str = "RTREC_"
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
            type=argparse_type(setting.parse),
            choices=setting.choices,
            metavar=setting.dest.upper() if not setting.choices else None,
            help=f"{setting.help} [{env_var}, default: {setting.default}]",
            # An on/off option is also a plain flag: `--redact-pii` means `--redact-pii on`.
            nargs="?" if setting.switch else None,
            const="on" if setting.switch else None,
        )


def markdown_table(settings: Sequence[Option]) -> str:
    """The README's table of `settings`: option, variable, default, meaning."""
    lines = ["| option | variable | default | meaning |", "|---|---|---|---|"]
    for setting in settings:
        shown = f"`{setting.default}`" if setting.default != "" else "empty"
        default = setting.doc_default or shown
        meaning = setting.doc or setting.help
        lines.append(f"| `{setting.flag}` | `{setting.env_var()}` | {default} | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":  # `python -m rtrec.settings` prints the README's table of options
    print(markdown_table(UP_SETTINGS))
