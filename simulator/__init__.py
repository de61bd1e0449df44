"""A local fake of the OpenAI Realtime WebSocket service (GA and beta), with its own frame log."""

from simulator.handshake import Handshake
from simulator.pacing import Pacing
from simulator.responses import RATE_LIMITED_MODEL
from simulator.serve import make_server, serve_forever
from simulator.server import (
    INVALID_KEY,
    REFUSE_UPGRADE_KEY,
    CloseInfo,
    FakeRealtimeServer,
    LoggedMessage,
    run_in_thread,
)

__all__ = [
    "INVALID_KEY",
    "RATE_LIMITED_MODEL",
    "REFUSE_UPGRADE_KEY",
    "CloseInfo",
    "FakeRealtimeServer",
    "Handshake",
    "LoggedMessage",
    "Pacing",
    "make_server",
    "run_in_thread",
    "serve_forever",
]
