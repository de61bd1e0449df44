"""Starts the recorder process, waits until it is ready, and starts it again when it dies."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from handover.config import DB_CHECK_MODULE, RecorderConfig

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # a first migration of a remote PostgreSQL can take a while
RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class RecorderStartError(Exception):
    """The recorder process could not start; the message is its one-line reason."""


def database_problem(db_url: str) -> str | None:
    """Why the recorder program refuses `db_url` (its one-line `error: …`), or None if it would
    open it: the URL and file checks only, without loading SQLAlchemy into the relay."""
    command = [sys.executable, "-m", DB_CHECK_MODULE, db_url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True) as process:
        line = _first_line(process, START_TIMEOUT_S)
        if process.poll() is None and line.startswith("error: recorder not ready"):
            process.kill()
    return None if line == "ready" else line.removeprefix("error: ") or "recorder exited at start"


class RecorderProcess:
    """One recorder child process: started before traffic, restarted if it dies, stopped last."""

    def __init__(self, config: RecorderConfig, log_level: str | None = None) -> None:
        self.config = config
        # The recorder logs as verbosely as the process that starts it.
        self._log_level = log_level or logging.getLevelName(logging.getLogger().getEffectiveLevel())
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="rtrec-recorder", daemon=True)
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start it and wait for `ready`; raises `RecorderStartError` with the reason if not."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start it without waiting, so that the relay can get ready meanwhile."""
        self._process = self._popen()

    def wait_ready(self) -> None:
        """Wait for the launched process's `ready`, then watch over it."""
        assert self._process is not None
        self._check_ready(self._process)
        self._watcher.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM once the relays are gone: it writes what it holds, then exits."""
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.error("recorder did not stop within %.0f s; killing it", timeout_s)
                process.kill()
                process.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(Path(self.config.socket).parent)

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = self._popen()
        self._check_ready(process)
        return process

    def _popen(self) -> subprocess.Popen[bytes]:
        config = dataclasses.replace(self.config, restarts=self.restarts)
        command = [*config.command(), "--log-level", self._log_level]
        # Its own session: a Ctrl-C on the terminal reaches the relay, which stops first and
        # then stops the recorder, so the last frames are handed over before it drains.
        return subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)

    @staticmethod
    def _check_ready(process: subprocess.Popen[bytes]) -> None:
        line = _first_line(process, START_TIMEOUT_S)
        if line != "ready":
            if process.poll() is None:
                process.kill()
            process.wait()
            raise RecorderStartError(line.removeprefix("error: ") or "recorder exited at start")

    def _watch(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            process = self._process
            assert process is not None
            code = process.wait()
            if self._stopping.is_set():
                return
            logger.error("recorder process exited (status %s); starting it again", code)
            while not self._stopping.is_set():
                time.sleep(RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)])
                attempt += 1
                self.restarts += 1
                try:
                    self._process = self._spawn()
                except (RecorderStartError, OSError) as exc:
                    logger.error("recorder did not start again: %s", exc)
                    continue
                attempt = 0
                break


def _first_line(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The recorder's one line on stdout (`ready` or `error: …`), or why there is none."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    if not ready:
        return f"error: recorder not ready after {timeout_s:.0f} s"
    line = process.stdout.readline().decode(errors="replace").strip()
    process.stdout.close()
    return line
