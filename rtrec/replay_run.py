"""Running `rtrec replay`: read the recording, start a proxy child, drive it, report the new id."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

from rtrec.errors import CommandError
from rtrec.replay import (
    DEFAULT_UPSTREAM,
    PLACEHOLDER_KEY,
    Plan,
    drive,
    load_tool_hook,
    plan,
    replay_path,
)
from storage.db import open_for_writing
from storage.detail import audio_chunks, get_session
from storage.recording import latest_replay, replay_events


def _load(db_url: str, session_id: str) -> tuple[dict[str, Any], Plan]:
    from rtrec.cli import reading

    with reading(db_url) as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise CommandError(f"no session {session_id!r} in the database")
        if session["record_mode"] == "metadata":
            raise CommandError(
                f"session {session_id} was recorded with --record metadata: its events carry "
                "no content (no instructions, text or audio) to replay"
            )
        with_audio = session["record_mode"] == "full"
        audio = {c["seq"]: c["data"] for c in audio_chunks(connection, session_id, "client")}
        steps = plan(list(replay_events(connection, session_id)), audio, with_audio)
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


def run(args: argparse.Namespace) -> int:
    from rtrec.net import free_port
    from rtrec.services import _proxy_process

    session, steps = _load(args.db, args.session_id)
    key = _api_key(args.upstream)
    hook = None
    if args.tool_hook:
        try:
            hook = load_tool_hook(args.tool_hook)
        except (OSError, ValueError, SyntaxError) as exc:
            raise CommandError(f"--tool-hook: {exc}") from exc
    if session["record_mode"] == "text":
        print(
            f"session {session['id']} was recorded with --record text: replaying without audio "
            f"({steps.skipped_audio} audio appends left out)",
            flush=True,
        )
    open_for_writing(args.db).dispose()  # a database the proxy child cannot write: one line here
    port = free_port()
    started = datetime.now(UTC)
    path = replay_path(session["path"], args.model)
    with _proxy_process(args.upstream, args.db, port, 0):
        notes = asyncio.run(
            drive(
                f"ws://127.0.0.1:{port}{path}",
                _headers(session, key),
                steps,
                realtime=args.pace == "realtime",
                model=args.model,
                tool_hook=hook,
            )
        )
    for note in notes:
        print(f"note: {note}", flush=True)
    replay_id = _find_replay(args.db, session["id"], started)
    print(f"replayed {session['id']} as {replay_id} ({len(steps.steps)} client events)")
    print(f"compare: rtrec diff {session['id']} {replay_id} --db {args.db}")
    return 0


def _find_replay(db_url: str, session_id: str, started: datetime) -> str:
    from rtrec.cli import reading

    deadline = time.monotonic() + 10
    while True:
        with reading(db_url) as connection:
            found = latest_replay(connection, session_id, started)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise CommandError("the replay was not recorded (see the proxy's log above)")
        time.sleep(0.2)
