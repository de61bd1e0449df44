"""`rtrec simulate`: a local stand-in for the Realtime API."""

from __future__ import annotations

import argparse
from typing import Any

from rtrec.errors import CommandError
from rtrec.settings import SIMULATE_SETTINGS, add_settings


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "simulate", help="a local Realtime API simulator"
    )
    add_settings(parser, SIMULATE_SETTINGS, env_prefix="RTREC_SIMULATE_")
    parser.add_argument("--fast", action="store_true", help="no pacing: as fast as possible")
    return parser


def run(args: argparse.Namespace) -> int:
    import asyncio  # not at the top: every command's start-up would pay for it

    from simulator.serve import serve_forever

    try:
        asyncio.run(serve_forever(args.host, args.port, fast=args.fast))
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc}") from exc
    return 0
