"""A local fake of the OpenAI Realtime (GA and beta) and GPT-Live WebSocket services, with its own
frame log."""

from simulator.frame_log import CloseInfo, LoggedMessage
from simulator.handshake import Handshake
from simulator.live_session import LIVE_AT_CAPACITY_MODEL, LiveSession
from simulator.pacing import Pacing
from simulator.responses import RATE_LIMITED_MODEL
from simulator.serve import make_server, serve_forever
from simulator.server import (
    INVALID_KEY,
    REFUSE_UPGRADE_KEY,
    FakeRealtimeServer,
    run_in_thread,
)

__all__ = [
    "INVALID_KEY",
    "LIVE_AT_CAPACITY_MODEL",
    "RATE_LIMITED_MODEL",
    "REFUSE_UPGRADE_KEY",
    "CloseInfo",
    "FakeRealtimeServer",
    "Handshake",
    "LiveSession",
    "LoggedMessage",
    "Pacing",
    "make_server",
    "run_in_thread",
    "serve_forever",
]
