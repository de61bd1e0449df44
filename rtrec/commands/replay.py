"""`rtrec replay`: read the recording, start a proxy child, drive it, report the new id."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from rtrec.errors import CommandError
from rtrec.replay import DEFAULT_UPSTREAM, PLACEHOLDER_KEY, Plan
from rtrec.settings import DB, add_settings


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "replay", help="re-drive a recorded session as a new recording"
    )
    parser.add_argument("session_id", metavar="SESSION_ID")
    parser.add_argument(
        "--upstream", default=DEFAULT_UPSTREAM, help="where to replay (needs OPENAI_API_KEY)"
    )
    parser.add_argument("--model", help="replay with this model instead of the recorded one")
    parser.add_argument(
        "--pace",
        choices=("realtime", "fast"),
        default="realtime",
        help="realtime: the recorded gaps between client events; fast: no pauses",
    )
    parser.add_argument(
        "--tool-hook",
        metavar="FILE.py",
        help="answer the replay's function calls with tool_output(name, arguments) from this "
        "file instead of the recorded outputs",
    )
    add_settings(parser, [DB])
    return parser


def _load(db_url: str, prefix: str) -> tuple[dict[str, Any], Plan]:
    from rtrec.database import reading, session_id
    from rtrec.replay import plan
    from storage.detail import audio_chunks, get_session
    from storage.recording import replay_events

    with reading(db_url) as connection:
        found = session_id(connection, prefix)
        session = get_session(connection, found)
        if session is None:  # deleted between the two reads (a prune running meanwhile)
            raise CommandError(f"no session {prefix!r} in the database")
        if session["record_mode"] == "metadata":
            raise CommandError(
                f"session {found} was recorded with --record metadata: its events carry "
                "no content (no instructions, text or audio) to replay"
            )
        with_audio = session["record_mode"] == "full"
        audio = {c["seq"]: c["data"] for c in audio_chunks(connection, found, "client")}
        steps = plan(list(replay_events(connection, found)), audio, with_audio)
    return session, steps


def _api_key(upstream: str) -> str:
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if upstream.rstrip("/") == DEFAULT_UPSTREAM:
        raise CommandError("replaying against the OpenAI API needs OPENAI_API_KEY")
    return PLACEHOLDER_KEY  # a local server or the simulator takes any key


def _headers(session: dict[str, Any], key: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}", "Rtrec-Replay-Of": session["id"]}
    if session["api"] == "beta":
        headers["OpenAI-Beta"] = "realtime=v1"
    return headers


def _tool_hook(path: str | None) -> Any:
    from rtrec.replay import load_tool_hook

    if not path:
        return None
    try:
        return load_tool_hook(path)
    except (OSError, ValueError, SyntaxError) as exc:
        raise CommandError(f"--tool-hook: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    from storage.db import open_for_writing

    session, steps = _load(args.db, args.session_id)
    key = _api_key(args.upstream)
    hook = _tool_hook(args.tool_hook)
    if session["record_mode"] == "text":
        print(
            f"session {session['id']} was recorded with --record text: replaying without audio "
            f"({steps.skipped_audio} audio appends left out)",
            flush=True,
        )
    open_for_writing(args.db).dispose()  # a database the proxy child cannot write: one line here
    # The child's log is its own business unless the replay fails: then the error line names it.
    with tempfile.NamedTemporaryFile(prefix="rtrec-replay-", suffix=".log", delete=False) as log:
        started, notes = _drive(args, session, steps, key, hook, log)
        replay_id = _find_replay(args.db, session["id"], started, Path(log.name))
    os.unlink(log.name)
    for note in notes:
        print(f"note: {note}", flush=True)
    print(f"replayed {session['id']} as {replay_id} ({len(steps.steps)} client events)")
    print(f"compare: uv run rtrec diff {session['id']} {replay_id} --db {shlex.quote(args.db)}")
    return 0


def _drive(
    args: argparse.Namespace,
    session: dict[str, Any],
    steps: Plan,
    key: str,
    hook: Any,
    log: IO[bytes],
) -> tuple[datetime, list[str]]:
    """Run the proxy child and send the plan through it; when it started and the drive's notes."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    from rtrec import services
    from rtrec.net import free_port
    from rtrec.replay import drive, replay_path

    port = free_port()
    started = datetime.now(UTC)
    url = f"ws://127.0.0.1:{port}{replay_path(session['path'], args.model)}"
    with services.proxy_process(args.upstream, args.db, port, 0, log):
        try:
            notes = asyncio.run(
                drive(
                    url,
                    _headers(session, key),
                    steps,
                    realtime=args.pace == "realtime",
                    model=args.model,
                    tool_hook=hook,
                )
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise CommandError(
                f"{args.upstream} did not take the session (HTTP {status}): is it reachable "
                f"and the key right? the proxy's log: {log.name}"
            ) from None
        except (InvalidHandshake, OSError) as exc:
            raise CommandError(
                f"the replay could not connect through the proxy ({exc}); "
                f"the proxy's log: {log.name}"
            ) from None
    return started, notes


def _find_replay(db_url: str, session_id: str, started: datetime, log: Path) -> str:
    from rtrec.database import reading
    from storage.recording import latest_replay

    deadline = time.monotonic() + 10
    while True:
        with reading(db_url) as connection:
            found = latest_replay(connection, session_id, started)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise CommandError(f"the replay was not recorded (see the proxy's log: {log})")
        time.sleep(0.2)
