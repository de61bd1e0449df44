"""Running replays: load a recording, start the replay's proxy child, drive it, find the result.

`rtrec replay SESSION` runs one; a suite (`rtrec/suite.py`) runs many through one proxy child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rtrec.errors import CommandError
from rtrec.replay import (
    DEFAULT_UPSTREAM,
    PLACEHOLDER_KEY,
    Overrides,
    Plan,
    ReplayError,
    ToolHook,
    replay_path,
    with_overrides,
)


@dataclass(frozen=True)
class ReplayOptions:
    """How every replay of a run is made (the `rtrec replay` flags)."""

    upstream: str
    db_url: str
    realtime: bool
    overrides: Overrides
    tool_hook: ToolHook | None
    wait_s: float


@dataclass(frozen=True)
class Recording:
    """A recorded session ready to replay: its `sessions` row and the plan of its client side."""

    session: dict[str, Any]
    steps: Plan


def load(db_url: str, prefix: str) -> Recording:
    """The session `prefix` names and its replay plan; one-line errors for what cannot replay."""
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
    return Recording(session, steps)


def api_key(upstream: str) -> str:
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


@dataclass
class ProxyChild:
    """The replay's `rtrec proxy` child: its port, and its log, kept when a replay failed."""

    port: int
    log: Path
    keep_log: bool = False


@contextlib.contextmanager
def replay_proxy(options: ReplayOptions) -> Iterator[ProxyChild]:
    """An `rtrec proxy` child in front of the upstream. Its log is its own business, removed
    afterwards unless something failed: then the error line names it."""
    from rtrec import services
    from rtrec.net import free_port
    from storage.db import open_for_writing

    open_for_writing(options.db_url).dispose()  # a database the child cannot write: one line here
    with tempfile.NamedTemporaryFile(prefix="rtrec-replay-", suffix=".log", delete=False) as log:
        child = ProxyChild(free_port(), Path(log.name))
        try:
            with services.proxy_process(options.upstream, options.db_url, child.port, 0, log):
                yield child
        except Exception:
            child.keep_log = True
            raise
        finally:
            if not child.keep_log:
                os.unlink(log.name)


def replay_one(
    recording: Recording, options: ReplayOptions, child: ProxyChild
) -> tuple[str, list[str]]:
    """Replays one recording through the proxy child: the new session's id and notes on waits
    a replay without audio gave up. ReplayError (one line) when it did not run as recorded."""
    started = datetime.now(UTC)
    notes = _drive(recording, options, child)
    try:
        return find_replay(options.db_url, recording.session["id"], started, child.log), notes
    except ReplayError:
        child.keep_log = True
        raise


def _drive(recording: Recording, options: ReplayOptions, child: ProxyChild) -> list[str]:
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    from rtrec.replay_drive import drive

    session = recording.session
    url = f"ws://127.0.0.1:{child.port}{replay_path(session['path'], options.overrides.model)}"
    coroutine = drive(
        url,
        _headers(session, api_key(options.upstream)),
        with_overrides(recording.steps, options.overrides, session["api"]),
        realtime=options.realtime,
        overrides=options.overrides,
        tool_hook=options.tool_hook,
        wait_s=options.wait_s,
    )
    try:
        return asyncio.run(coroutine)
    except InvalidStatus as exc:
        child.keep_log = True
        status = exc.response.status_code
        raise ReplayError(
            f"{options.upstream} did not take the session (HTTP {status}): is it reachable "
            f"and the key right? the proxy's log: {child.log}"
        ) from None
    except (InvalidHandshake, OSError) as exc:
        child.keep_log = True
        raise ReplayError(
            f"the replay could not connect through the proxy ({exc or type(exc).__name__}); "
            f"the proxy's log: {child.log}"
        ) from None


def find_replay(db_url: str, session_id: str, started: datetime, log: Path) -> str:
    """The id the recorder gave the replay (it writes a moment after the proxy relayed)."""
    from rtrec.database import reading
    from storage.recording import latest_replay

    deadline = time.monotonic() + 10
    while True:
        with reading(db_url) as connection:
            found = latest_replay(connection, session_id, started)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise ReplayError(f"the replay was not recorded (see the proxy's log: {log})")
        time.sleep(0.2)
