"""The simulator's record of a connection: each frame as sent or received, and how it closed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from websockets.asyncio.server import ServerConnection

Direction = Literal["client", "server"]
#: (close code, reason, who closed first: ``client`` or ``server``).
CloseInfo = tuple[int | None, str | None, str]


@dataclass
class LoggedMessage:
    """One WebSocket message exactly as the simulator received (``client``) or sent (``server``)."""

    conn_id: int
    direction: Direction
    data: str | bytes
    ts: float

    @property
    def event(self) -> dict[str, Any] | None:
        """The parsed JSON object of a text frame; ``None`` for binary frames and non-objects."""
        if not isinstance(self.data, str):
            return None
        try:
            obj = json.loads(self.data)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None


def close_info(ws: ServerConnection) -> CloseInfo:
    """(code, reason, who closed first) from the closing handshake of ``ws``."""
    protocol = ws.protocol
    rcvd, sent = protocol.close_rcvd, protocol.close_sent
    if protocol.close_rcvd_then_sent is True or (rcvd is not None and sent is None):
        assert rcvd is not None
        return int(rcvd.code), rcvd.reason, "client"
    if sent is not None:
        return int(sent.code), sent.reason, "server"
    return None, None, "client"
