"""``rtrec simulate``: the simulator as a long-running server for people and their clients."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from simulator.pacing import Pacing

if TYPE_CHECKING:
    from simulator.call_server import CallServer

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def make_server(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    fast: bool = False,
    webhook_url: str | None = None,
) -> CallServer:
    """A simulator for users: paced like the real service unless ``fast``, keeping no frame log;
    it also answers WebRTC and SIP calls (SIP webhooks go to ``webhook_url``)."""
    # Imported here: aiortc and PyAV take seconds to import, and `import simulator` (every test
    # that fakes OpenAI) needs neither.
    from simulator.call_server import CallServer

    pacing = Pacing() if fast else Pacing.realtime()
    return CallServer(host, port, pacing=pacing, keep_log=False, webhook_url=webhook_url)


async def serve_forever(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    fast: bool = False,
    handle_signals: bool = True,
) -> None:
    """Serve until cancelled, or until SIGINT/SIGTERM when ``handle_signals`` (then it returns).

    Raises :class:`OSError` when the port is taken and :class:`ValueError` for a host that is not
    loopback. Logs one INFO line with the URL and the client's ``OPENAI_BASE_URL`` line.
    """
    server = make_server(host, port, fast=fast)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        logger.info(
            "Realtime and GPT-Live simulator (%s) listening on %s; point clients at it: "
            "OPENAI_BASE_URL=%s/v1",
            "fast" if fast else "paced like the real service",
            server.ws_url.removesuffix("/v1"),
            server.base_url,
        )
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await server.stop()
