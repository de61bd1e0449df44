"""The `rtrec` command line: the parser made from `rtrec/commands/`, logging, one-line errors.

Each command module imports what its command needs when it runs, so this module (and `--help`)
loads neither SQLAlchemy nor mitmproxy nor Streamlit.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NoReturn

from rtrec import __version__
from rtrec.commands import (
    calls,
    dashboard,
    db_upgrade,
    demo,
    diff,
    export,
    proxy,
    prune,
    replay,
    sessions,
    simulate,
    up,
)
from rtrec.errors import CommandError
from rtrec.settings import resolve_environment

logger = logging.getLogger("rtrec")
# In `rtrec --help`'s order; each module has add_parser(commands) and run(args).
COMMANDS: tuple[ModuleType, ...] = (
    up,
    proxy,
    dashboard,
    simulate,
    demo,
    db_upgrade,
    sessions,
    calls,
    export,
    prune,
    diff,
    replay,
)
# A reader that goes away (`rtrec export … | head`) ends us as SIGPIPE ends `cat`: status 128+13.
BROKEN_PIPE_STATUS = 141


class _Parser(argparse.ArgumentParser):
    """Reports a bad option as one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not verbose:  # one line per client and server connection is too chatty for a service
        logging.getLogger("mitmproxy").setLevel(logging.WARNING)
        # The demo's simulator, its WebRTC peer's ICE checks and its SDK client's requests.
        for chatty in ("websockets", "aioice", "aiortc", "httpx", "httpx2"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rtrec", description="Recording proxy for the OpenAI Realtime API.")
    parser.add_argument("--version", action="version", version=f"rtrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for command in COMMANDS:
        command.add_parser(commands).set_defaults(run=command.run)
    return parser


def _database_failure(args: argparse.Namespace, exc: Exception) -> str | None:
    """The one line for a database error, None for any other; only a command that opened a
    database can raise one, so this imports nothing that was not loaded already."""
    if "storage.db" not in sys.modules:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import DatabaseOpenError, database_problem

    if isinstance(exc, DatabaseOpenError):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):  # a database that breaks mid-command, after the checks
        return database_problem(args.db, exc) if "db" in args else exc.__class__.__name__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = " ".join(filter(None, (args.command, getattr(args, "db_command", None))))
    try:
        resolve_environment(args)
    except argparse.ArgumentTypeError as exc:
        print(f"rtrec {command}: {exc} (see rtrec {command} --help)", file=sys.stderr)
        return 2
    _configure_logging(args.verbose)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CommandError as exc:
        print(f"rtrec {command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The Python docs' recipe: later flushes (at exit too) go nowhere instead of raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        problem = _database_failure(args, exc)
        if problem is None:
            raise
        print(f"rtrec {command}: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
