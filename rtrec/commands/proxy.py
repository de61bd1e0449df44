"""`rtrec proxy`: the recording proxy and its metrics endpoint."""

from __future__ import annotations

import argparse
from typing import Any

from rtrec.settings import CLI_OPTIONS, add_settings, warn_if_exposed


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "proxy", help="run the recording proxy and metrics endpoint"
    )
    add_settings(parser, CLI_OPTIONS)
    return parser


def run(args: argparse.Namespace) -> int:
    from rtrec import services

    warn_if_exposed(args)
    services.serve_proxy(args)
    return 0
