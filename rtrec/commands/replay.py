"""`rtrec replay`: re-drive one recorded session, or a suite of tagged sessions, as new
recordings; a suite diffs each replay against its original and fails the build on a regression."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from rtrec.commands.diff import add_threshold_options
from rtrec.commands.sessions import property_filter
from rtrec.errors import CommandError
from rtrec.replay import DEFAULT_UPSTREAM, WAIT_S, Overrides
from rtrec.settings import DB, add_settings, positive_int


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "replay", help="re-drive a recorded session (or a suite of tagged ones) as new recordings"
    )
    parser.add_argument("session_id", metavar="SESSION_ID", nargs="?", help="or --property")
    parser.add_argument(
        "--upstream", default=DEFAULT_UPSTREAM, help="where to replay (needs OPENAI_API_KEY)"
    )
    parser.add_argument("--model", help="replay with this model instead of the recorded one")
    parser.add_argument("--voice", help="replay with this voice (set in session.update)")
    parser.add_argument(
        "--instructions-file", metavar="FILE", help="replay with these instructions instead"
    )
    parser.add_argument(
        "--pace",
        choices=("realtime", "fast"),
        default="realtime",
        help="realtime: the recorded gaps between client events; fast: no pauses",
    )
    parser.add_argument(
        "--timeout-s",
        type=_seconds,
        default=WAIT_S,
        help="fail when the upstream has not answered as recorded within this many seconds",
    )
    parser.add_argument(
        "--tool-hook",
        metavar="FILE.py",
        help="answer the replay's function calls with tool_output(name, arguments) from this "
        "file instead of the recorded outputs",
    )
    _add_suite_options(parser)
    add_settings(parser, [DB])
    return parser


def _add_suite_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--property",
        type=property_filter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a suite: replay every session tagged so (repeatable: all must match)",
    )
    parser.add_argument("--junit", metavar="FILE.xml", help="a suite's JUnit XML report")
    parser.add_argument(
        "--concurrency", type=positive_int, default=1, help="a suite's replays at a time"
    )
    add_threshold_options(parser, "a suite fails a session whose replay passes it")


def _tool_hook(path: str | None) -> Any:
    from rtrec.replay import load_tool_hook

    if not path:
        return None
    try:
        return load_tool_hook(path)
    except (OSError, ValueError, SyntaxError) as exc:
        raise CommandError(f"--tool-hook: {exc}") from exc


def _options(args: argparse.Namespace) -> Any:
    from rtrec.replaying import ReplayOptions

    instructions = None
    if args.instructions_file:
        try:
            instructions = Path(args.instructions_file).read_text()
        except OSError as exc:
            raise CommandError(f"--instructions-file: {exc}") from exc
    return ReplayOptions(
        upstream=args.upstream,
        db_url=args.db,
        realtime=args.pace == "realtime",
        overrides=Overrides(args.model, args.voice, instructions),
        tool_hook=_tool_hook(args.tool_hook),
        wait_s=args.timeout_s,
    )


def run(args: argparse.Namespace) -> int:
    if args.session_id is not None and args.property:
        raise CommandError("give a SESSION_ID or --property NAME=VALUE (a suite), not both")
    if args.session_id is None and not args.property:
        raise CommandError("give a SESSION_ID, or --property NAME=VALUE to replay a suite")
    if args.session_id is None:
        return _run_suite(args)
    if args.junit or args.fail_on:
        raise CommandError("--junit and --fail-on apply to a suite (--property NAME=VALUE)")
    return _run_one(args)


def _run_one(args: argparse.Namespace) -> int:
    from rtrec.replay import ReplayError
    from rtrec.replaying import api_key, load, replay_one, replay_proxy

    recording = load(args.db, args.session_id)
    options = _options(args)
    api_key(args.upstream)  # refused before a proxy starts
    session, steps = recording.session, recording.steps
    if session["record_mode"] == "text":
        print(
            f"session {session['id']} was recorded with --record text: replaying without audio "
            f"({steps.skipped_audio} audio appends left out)",
            flush=True,
        )
    try:
        with replay_proxy(options) as child:
            replay_id, notes = replay_one(recording, options, child)
    except ReplayError as exc:
        raise CommandError(str(exc)) from None
    for note in notes:
        print(f"note: {note}", flush=True)
    print(f"replayed {session['id']} as {replay_id} ({len(steps.steps)} client events)")
    print(f"compare: uv run rtrec diff {session['id']} {replay_id} --db {shlex.quote(args.db)}")
    return 0


def _run_suite(args: argparse.Namespace) -> int:
    from rtrec import suite

    ids = suite.suite_sessions(args.db, args.property)
    tags = ", ".join(f"{name}={value}" for name, value in args.property)
    if not ids:
        raise CommandError(f"no recorded session is tagged {tags}")
    options = _options(args)
    results = suite.run_suite(ids, options, args.fail_on, args.allow_unknown_cost, args.concurrency)
    print(suite.summary(results))
    if args.junit:
        suite.write_junit(args.junit, f"rtrec replay {tags}", results)
        print(f"JUnit report: {args.junit}")
    return 1 if any(r.outcome != "PASS" for r in results) else 0
