"""`rtrec dashboard`: the read-only session browser."""

from __future__ import annotations

import argparse
from typing import Any

from rtrec.settings import DASHBOARD_SETTINGS, add_settings, warn_if_exposed


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "dashboard", help="the session browser (read-only)"
    )
    add_settings(parser, DASHBOARD_SETTINGS, env_prefix="RTREC_DASHBOARD_")
    return parser


def run(args: argparse.Namespace) -> int:
    from dashboard.launch import run_dashboard

    warn_if_exposed(args)
    return run_dashboard(args.db, args.host, args.port)
