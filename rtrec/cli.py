"""The `rtrec` command line: argument parsing and the edges where databases are opened."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any, NoReturn

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from rtrec import __version__, regression, services
from rtrec.errors import CommandError
from rtrec.listing import print_table, sessions_table, timestamp
from rtrec.progress import progress
from rtrec.settings import (
    CLI_OPTIONS,
    DASHBOARD_SETTINGS,
    DB,
    EXPOSING_HOSTS,
    SIMULATE_SETTINGS,
    UP_SETTINGS,
    add_settings,
    exposure_warning,
    non_negative_int,
    positive_int,
    resolve_environment,
)
from storage import browse, detail, export, overview, prune
from storage.db import (
    DatabaseOpenError,
    current_revision,
    database_problem,
    open_for_reading,
    open_for_writing,
)

logger = logging.getLogger("rtrec")
PRUNE_BATCH = 200
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
        logging.getLogger("websockets").setLevel(logging.WARNING)  # the demo's simulator


@contextlib.contextmanager
def reading(url: str) -> Iterator[Connection]:
    """A read-only connection to `url`, refused (one line) unless its schema is at head."""
    engine = open_for_reading(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    engine = open_for_writing(args.db)
    try:
        print(f"database at schema {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
    return value


def property_filter(text: str) -> tuple[str, str]:
    """`customer=acme` -> ("customer", "acme"), the name spelt as the proxy stores it."""
    from handover.properties import property_name

    raw_name, equals, value = text.partition("=")
    name = property_name(raw_name)
    if not equals or name is None:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def cmd_sessions(args: argparse.Namespace) -> int:
    with reading(args.db) as connection:
        rows = browse.list_sessions(connection, args.limit, args.property)
        failures = [] if rows else overview.upgrade_failures(connection, None, None, limit=1)
    if args.json:
        print(json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows], indent=2))
        return 0
    if not rows:
        print("no sessions recorded yet: point a client at `rtrec proxy`")
        if failures:  # the likeliest reason there are none
            last = failures[0]
            print(
                f"the last connection attempt failed ({timestamp(last['ts'])}, "
                f"HTTP {last['status']}): "
                f"{last['reason'] or 'refused by the upstream'}; the dashboard lists them all"
            )
        return 0
    print_table(sessions_table(rows), sys.stdout)
    return 0


def _session_id(connection: Connection, prefix: str) -> str:
    """The one session whose id is or starts with `prefix`."""
    matches = browse.session_ids_starting(connection, prefix) if prefix else []
    if not matches:
        raise CommandError(f"no session {prefix!r} in the database")
    if len(matches) > 1:
        raise CommandError(f"{prefix!r} starts more than one session id: give more of it")
    return matches[0]


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
    with reading(args.db) as connection:
        session_id = _session_id(connection, args.session_id)
        if args.format == "jsonl":
            total = detail.count_events(connection, session_id)
            events = detail.session_events(connection, session_id)
            with _output(args.output, None) as out:
                export.write_jsonl(out, events, progress("exported events", total))
            return 0
        user = detail.audio_chunks(connection, session_id, "client")
        assistant = detail.audio_chunks(connection, session_id, "server")
    chosen = {"user": user, "assistant": assistant, "both": user or assistant}[args.side]
    if not chosen:
        which = "" if args.side == "both" else f"{args.side} "
        raise CommandError(
            f"session {session_id} has no recorded {which}audio "
            "(was it recorded with --record full?)"
        )
    try:
        if args.side == "both" and user and assistant:
            plan = export.conversation_plan(user, assistant)
        else:
            plan = export.side_plan(chosen)
        for note in plan.notes:
            print(f"rtrec export: warning: {note}", file=sys.stderr)
        plan.header()  # a file too long for WAV is refused before the output is created
        seconds = progress("seconds of audio written", plan.frames // plan.rate)
        with _output(args.output, f"{session_id}.wav") as out:
            export.write_wav(out, plan, seconds)
    except export.ExportError as exc:
        raise CommandError(str(exc)) from exc
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    # Deleting is no reason to migrate: a schema behind head is refused, `rtrec db upgrade` named.
    engine = open_for_writing(args.db, migrate=False)
    try:
        _prune(engine, args.older_than)
    finally:
        engine.dispose()
    return 0


def _prune(engine: Engine, older_than_days: int) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    with engine.connect() as connection:
        total = prune.count_sessions_started_before(connection, cutoff)
    show = progress("deleted sessions", total)
    deleted = _in_batches(
        engine,
        lambda connection: prune.prune_sessions(connection, cutoff, PRUNE_BATCH),
        None if show is None else lambda done: show(min(done, total)),
    )
    failures = _in_batches(
        engine, lambda connection: prune.prune_upgrade_failures(connection, cutoff, PRUNE_BATCH)
    )
    print(
        f"deleted {deleted} session(s) and {failures} failed connection attempt(s) "
        f"before {cutoff.isoformat(timespec='seconds')}"
    )


def _in_batches(
    engine: Engine,
    delete: Callable[[Connection], int],
    progressed: Callable[[int], None] | None = None,
) -> int:
    """Run `delete` (at most PRUNE_BATCH rows) until a batch comes back short: one short
    transaction per batch, so writers keep going. How many rows it deleted in all."""
    deleted, batch = 0, PRUNE_BATCH
    while batch == PRUNE_BATCH:
        with engine.begin() as connection:
            batch = delete(connection)
        deleted += batch
        if progressed is not None:
            progressed(deleted)
    return deleted


def _warn_if_exposed(args: argparse.Namespace) -> None:
    hosts = {name: getattr(args, name.replace("-", "_"), None) for name in EXPOSING_HOSTS}
    if getattr(args, "metrics_port", None) == 0:  # no metrics endpoint, nothing exposed there
        hosts.pop("metrics-host")
    warning = exposure_warning({name: host for name, host in hosts.items() if host is not None})
    if warning:  # printed, not logged: it must show whatever the log level
        print(f"rtrec {args.command}: {warning}", file=sys.stderr, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    _warn_if_exposed(args)
    return services.cmd_up(args)


def cmd_proxy(args: argparse.Namespace) -> int:
    _warn_if_exposed(args)
    return services.cmd_proxy(args)


def cmd_dashboard(args: argparse.Namespace) -> int:
    _warn_if_exposed(args)
    return services.cmd_dashboard(args)


def cmd_demo(args: argparse.Namespace) -> int:
    status = services.cmd_demo(args)
    if args.exit:
        db = shlex.quote(args.db)
        print(f"Look at the result:\n  rtrec dashboard --db {db}\n  rtrec sessions --db {db}")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rtrec", description="Recording proxy for the OpenAI Realtime API.")
    parser.add_argument("--version", action="version", version=f"rtrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    up = commands.add_parser("up", help="proxy, metrics endpoint and dashboard together")
    add_settings(up, UP_SETTINGS)
    up.set_defaults(run=cmd_up)

    proxy = commands.add_parser("proxy", help="run the recording proxy and metrics endpoint")
    add_settings(proxy, CLI_OPTIONS)
    proxy.set_defaults(run=cmd_proxy)

    dashboard = commands.add_parser("dashboard", help="the session browser (read-only)")
    add_settings(dashboard, DASHBOARD_SETTINGS, env_prefix="RTREC_DASHBOARD_")
    dashboard.set_defaults(run=cmd_dashboard)

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
    demo.set_defaults(run=cmd_demo)

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
    except (CommandError, DatabaseOpenError) as exc:
        print(f"rtrec {command}: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # a database that breaks mid-command, after the checks
        problem = database_problem(args.db, exc) if "db" in args else exc.__class__.__name__
        print(f"rtrec {command}: {problem}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The Python docs' recipe: later flushes (at exit too) go nowhere instead of raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
