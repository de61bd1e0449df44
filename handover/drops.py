"""What the relay relayed but did not hand over: counted by session, direction and reason until
reported (`DROPPED`), and, once recorders acknowledged them, by reason for a recorder that
restarted (its counter goes on from them)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

DROP_LOG_EVERY_S = 10.0


@dataclass
class Drops:
    client: int = 0
    server: int = 0
    client_bytes: int = 0
    server_bytes: int = 0

    def add(self, fields: dict[str, Any]) -> None:
        self.client += int(fields.get("client", 0))
        self.server += int(fields.get("server", 0))
        self.client_bytes += int(fields.get("client_bytes", 0))
        self.server_bytes += int(fields.get("server_bytes", 0))


class DropTally:
    """The relay's drop counts; logs them at most once per `DROP_LOG_EVERY_S`."""

    def __init__(self) -> None:
        self.pending: dict[tuple[int, str], Drops] = {}
        self.earlier: dict[str, Drops] = {}  # acknowledged by recorders, by reason
        self.dropped = 0
        self._since_log = 0
        self._last_log = 0.0

    def add(self, session: int, from_client: bool, size: int, messages: int, reason: str) -> None:
        drops = self.pending.get((session, reason))
        if drops is None:
            drops = self.pending[(session, reason)] = Drops()
        if from_client:
            drops.client += messages
            drops.client_bytes += size
        else:
            drops.server += messages
            drops.server_bytes += size
        self.dropped += messages
        self._since_log += messages
        now = time.monotonic()
        if now - self._last_log >= DROP_LOG_EVERY_S:
            logger.warning(
                "recorder %s: dropped %d message(s) (relayed unchanged, not recorded)",
                "down" if reason == "recorder_down" else "behind",
                self._since_log,
            )
            self._last_log, self._since_log = now, 0

    def take(self) -> dict[tuple[int, str], Drops]:
        """The counts not reported yet; reported now."""
        pending, self.pending = self.pending, {}
        return pending

    def acknowledged(self, fields: dict[str, Any]) -> None:
        """A `DROPPED` item's counts, committed by a recorder."""
        self.earlier.setdefault(str(fields.get("reason")), Drops()).add(fields)
