"""`rtrec up`: the proxy, its metrics endpoint and the dashboard together."""

from __future__ import annotations

import argparse
from typing import Any

from rtrec.settings import UP_SETTINGS, add_settings, warn_if_exposed


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "up", help="proxy, metrics endpoint and dashboard together"
    )
    add_settings(parser, UP_SETTINGS)
    return parser


def run(args: argparse.Namespace) -> int:
    from rtrec import services

    warn_if_exposed(args)
    return services.run_up(args)
