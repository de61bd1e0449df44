"""`rtrec export`: one session's events as JSON Lines or its audio as WAV."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any

from rtrec.errors import CommandError
from rtrec.settings import DB, add_settings


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "export", help="export one session's events or audio"
    )
    parser.add_argument("session_id", metavar="SESSION_ID")
    parser.add_argument("--format", choices=("jsonl", "wav"), required=True)
    parser.add_argument("-o", "--output", help="file to write (jsonl: stdout by default)")
    parser.add_argument(
        "--side",
        choices=("both", "user", "assistant"),
        default="both",
        help="wav: user, assistant, or both as stereo (user left) on one timeline",
    )
    add_settings(parser, [DB])
    return parser


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


def run(args: argparse.Namespace) -> int:
    from analysis import export
    from rtrec.database import reading, session_id
    from rtrec.progress import progress
    from storage import detail

    with reading(args.db) as connection:
        found = session_id(connection, args.session_id)
        if args.format == "jsonl":
            total = detail.count_events(connection, found)
            events = detail.session_events(connection, found)
            with _output(args.output, None) as out:
                export.write_jsonl(out, events, progress("exported events", total))
            return 0
        user = detail.audio_chunks(connection, found, "client")
        assistant = detail.audio_chunks(connection, found, "server")
        session = detail.get_session(connection, found)
    _export_wav(args, found, user, assistant, _why_no_audio(session))
    return 0


def _why_no_audio(session: dict[str, Any] | None) -> str:
    """What to say of a session without audio: a Realtime call's sideband never had any."""
    from protocol import calls

    if session and session.get("call_id") and not calls.sideband_carries_audio(session["api"]):
        return (
            f"it watched call {session['call_id']} over a sideband, which carries no audio: "
            "the call's media went between the client and OpenAI"
        )
    return "was it recorded with --record full?"


def _export_wav(
    args: argparse.Namespace,
    found: str,
    user: list[dict[str, Any]],
    assistant: list[dict[str, Any]],
    why_none: str,
) -> None:
    from analysis import export
    from rtrec.progress import progress

    chosen = {"user": user, "assistant": assistant, "both": user or assistant}[args.side]
    if not chosen:
        which = "" if args.side == "both" else f"{args.side} "
        raise CommandError(f"session {found} has no recorded {which}audio ({why_none})")
    try:
        if args.side == "both" and user and assistant:
            plan = export.conversation_plan(user, assistant)
        else:
            plan = export.side_plan(chosen)
        for note in plan.notes:
            print(f"rtrec export: warning: {note}", file=sys.stderr)
        plan.header()  # a file too long for WAV is refused before the output is created
        seconds = progress("seconds of audio written", plan.frames // plan.rate)
        target = args.output or f"{found}.wav"
        with _output(target, None) as out:
            export.write_wav(out, plan, seconds)
    except export.ExportError as exc:
        raise CommandError(str(exc)) from exc
    if target != "-":  # the default name is the session's id: say where the file went
        print(
            f"rtrec export: wrote {plan.frames / plan.rate:.1f}s of audio to {target}",
            file=sys.stderr,
        )
