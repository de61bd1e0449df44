"""The `rtrec` command line: argument parsing and the edges where databases are opened."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any, NoReturn

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from rtrec import __version__, export, regression, services
from rtrec.errors import CommandError
from rtrec.settings import (
    DASHBOARD_SETTINGS,
    DB,
    PROXY_SETTINGS,
    SIMULATE_SETTINGS,
    UP_SETTINGS,
    add_settings,
    non_negative_int,
    positive_int,
    resolve_environment,
)
from storage import queries
from storage.db import DatabaseURLError, current_revision, head_revision, make_engine, upgrade

logger = logging.getLogger("rtrec")
PRUNE_BATCH = 200


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


def _engine(url: str, *, read_only: bool) -> Engine:
    try:
        engine = make_engine(url, read_only=read_only)
    except DatabaseURLError as exc:
        raise CommandError(str(exc)) from exc
    if read_only:
        try:
            revision = current_revision(engine)
        except SQLAlchemyError as exc:
            raise CommandError(f"cannot read the database: {exc.__class__.__name__}") from exc
        if revision != head_revision():
            raise CommandError(
                f"the database is at schema {revision or 'none'}, this rtrec needs "
                f"{head_revision()}: run `rtrec db upgrade --db …` first"
            )
    return engine


@contextlib.contextmanager
def _reading(url: str) -> Iterator[Connection]:
    with _engine(url, read_only=True).connect() as connection:
        yield connection


reading = _reading  # for the commands registered from other modules (rtrec.regression)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    engine = _engine(args.db, read_only=False)
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise CommandError(f"upgrade failed: {exc.__class__.__name__}: {exc}") from exc
    print(f"database at schema {current_revision(engine)}")
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
    return value


def property_filter(text: str) -> tuple[str, str]:
    """`customer=acme` -> ("customer", "acme"), the name spelt as the proxy stores it."""
    from proxy.tags import property_name

    raw_name, equals, value = text.partition("=")
    name = property_name(raw_name)
    if not equals or name is None:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def cmd_sessions(args: argparse.Namespace) -> int:
    with _reading(args.db) as connection:
        rows = [
            {k: _plain(v) for k, v in row.items()}
            for row in queries.list_sessions(connection, args.limit, args.property)
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no sessions recorded yet: point a client at `rtrec proxy`")
        return 0
    print(
        f"{'id':36}  {'started_at':25}  {'model':24} {'api':4} {'events':>7} {'resp':>5} "
        f"{'tokens':>8}  closed"
    )
    for row in rows:
        closed = f"{row['close_code'] or ''} {row['closed_by'] or ''}".strip() or "open"
        print(
            f"{row['id']:36}  {row['started_at'][:25]:25}  {(row['model'] or '-')[:24]:24} "
            f"{row['api']:4} {row['events']:>7} {row['responses']:>5} "
            f"{row['total_tokens'] or 0:>8}  {closed}"
        )
    return 0


def _progress(total: int) -> Callable[[int], None] | None:
    """A progress line on stderr when it is a terminal, for long exports."""
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\rexported {done:,} of {total:,} events", end=end, file=sys.stderr, flush=True)

    return show


@contextlib.contextmanager
def _output(path: str | None, default: str | None) -> Iterator[IO[bytes]]:
    target = path or default
    if target is None or target == "-":
        yield sys.stdout.buffer
        return
    try:
        with open(target, "wb") as out:
            yield out
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror}") from exc


def cmd_export(args: argparse.Namespace) -> int:
    with _reading(args.db) as connection:
        if queries.get_session(connection, args.session_id) is None:
            raise CommandError(f"no session {args.session_id!r} in the database")
        if args.format == "jsonl":
            total = queries.count_events(connection, args.session_id)
            events = queries.session_events(connection, args.session_id)
            with _output(args.output, None) as out:
                export.write_jsonl(out, events, _progress(total))
            return 0
        user = queries.session_audio(connection, args.session_id, "client")
        assistant = queries.session_audio(connection, args.session_id, "server")
    chosen = {"user": user, "assistant": assistant, "both": user or assistant}[args.side]
    if not chosen:
        which = "" if args.side == "both" else f"{args.side} "
        raise CommandError(
            f"session {args.session_id} has no recorded {which}audio "
            "(was it recorded with --record full?)"
        )
    try:
        if args.side == "both" and user and assistant:
            audio_format, rate, data = export.conversation_audio(user, assistant)
            channels = 2
        else:
            audio_format, rate, data = export.side_audio(chosen)
            channels = 1
    except export.ExportError as exc:
        raise CommandError(str(exc)) from exc
    with _output(args.output, f"{args.session_id}.wav") as out:
        export.write_wav(out, audio_format, rate, channels, data)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    engine = _engine(args.db, read_only=False)
    upgrade(engine)
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than)
    deleted, batch = 0, PRUNE_BATCH
    while batch == PRUNE_BATCH:  # one short transaction per batch: writers keep going
        with engine.begin() as connection:
            batch = queries.prune_sessions(connection, cutoff, PRUNE_BATCH)
        deleted += batch
    print(f"deleted {deleted} session(s) started before {cutoff.isoformat(timespec='seconds')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rtrec", description="Recording proxy for the OpenAI Realtime API.")
    parser.add_argument("--version", action="version", version=f"rtrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    up = commands.add_parser("up", help="proxy, metrics endpoint and dashboard together")
    add_settings(up, UP_SETTINGS)
    up.set_defaults(run=services.cmd_up)

    proxy = commands.add_parser("proxy", help="run the recording proxy and metrics endpoint")
    add_settings(proxy, PROXY_SETTINGS)
    proxy.set_defaults(run=services.cmd_proxy)

    dashboard = commands.add_parser("dashboard", help="the session browser (read-only)")
    add_settings(dashboard, DASHBOARD_SETTINGS, env_prefix="RTREC_DASHBOARD_")
    dashboard.set_defaults(run=services.cmd_dashboard)

    simulate = commands.add_parser("simulate", help="a local Realtime API simulator")
    add_settings(simulate, SIMULATE_SETTINGS, env_prefix="RTREC_SIMULATE_")
    simulate.add_argument("--fast", action="store_true", help="no pacing: as fast as possible")
    simulate.set_defaults(run=services.cmd_simulate)

    demo = commands.add_parser(
        "demo", help="simulator + proxy + dashboard with scripted sessions recorded"
    )
    add_settings(demo, [services.DEMO_DB])
    demo.add_argument("--exit", action="store_true", help="end after the sessions")
    demo.add_argument("--fast", action="store_true", help="an unpaced simulator")
    demo.add_argument(
        "--sessions",
        type=positive_int,
        default=None,
        metavar="N",
        help="run N sessions cycling through the scenarios (a load generator)",
    )
    demo.add_argument(
        "--concurrency",
        type=positive_int,
        default=1,
        metavar="C",
        help="with --sessions: at most C sessions at once",
    )
    demo.set_defaults(run=services.cmd_demo)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(
        dest="db_command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    db_upgrade = db_commands.add_parser("upgrade", help="run schema migrations")
    add_settings(db_upgrade, [DB])
    db_upgrade.set_defaults(run=cmd_db_upgrade)

    sessions = commands.add_parser("sessions", help="list recorded sessions, newest first")
    add_settings(sessions, [DB])
    sessions.add_argument("--json", action="store_true", help="one JSON array of objects")
    sessions.add_argument("--limit", type=positive_int, default=50, help="at most this many")
    sessions.add_argument(
        "--property",
        type=property_filter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="only sessions tagged with this property (repeatable: all must match)",
    )
    sessions.set_defaults(run=cmd_sessions)

    exporter = commands.add_parser("export", help="export one session's events or audio")
    exporter.add_argument("session_id", metavar="SESSION_ID")
    exporter.add_argument("--format", choices=("jsonl", "wav"), required=True)
    exporter.add_argument("-o", "--output", help="file to write (jsonl: stdout by default)")
    exporter.add_argument(
        "--side",
        choices=("both", "user", "assistant"),
        default="both",
        help="wav: user, assistant, or both as stereo (user left) on one timeline",
    )
    add_settings(exporter, [DB])
    exporter.set_defaults(run=cmd_export)

    prune = commands.add_parser("prune", help="delete old sessions with everything under them")
    prune.add_argument(
        "--older-than",
        type=non_negative_int,
        required=True,
        metavar="DAYS",
        help="sessions started more than DAYS ago (0: all)",
    )
    add_settings(prune, [DB])
    prune.set_defaults(run=cmd_prune)

    regression.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        resolve_environment(args)
    except argparse.ArgumentTypeError as exc:
        print(f"rtrec {args.command}: {exc} (see rtrec {args.command} --help)", file=sys.stderr)
        return 2
    _configure_logging(args.verbose)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CommandError as exc:
        print(f"rtrec {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
