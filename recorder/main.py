"""The recorder process: reads relayed frames from the hand-over, records them, serves /metrics.

Run by the relay (`proxy/recorder_process.py` starts and restarts it), never by hand:
`python -m recorder.main --socket PATH --db URL …`. It prints one line on stdout once it is
ready (`ready`) or why it cannot start (`error: …`), then serves until every relay that connected
has gone, or SIGTERM/SIGINT and a grace period for the relays to go.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from functools import partial

from prometheus_client import CollectorRegistry

from handover.config import RECORDER_MODULE, SHUTDOWN_REASON, RecorderConfig
from handover.resend import RESEND_LIMIT_BYTES
from handover.wire import ACK, HEADER, Decoder
from protocol.pricing import price_table
from recorder.call_observer import observer_config
from recorder.metrics import Metrics
from recorder.metrics_server import MetricsServer
from recorder.property_labels import property_labels
from recorder.recording import Recording
from storage.db import open_for_writing, shown_url
from storage.orphans import close_orphans
from storage.writer import Writer

logger = logging.getLogger(__name__)

# How long SIGTERM/SIGINT waits for the relays to hand over their last frames and go.
RELAYS_GRACE_S = 10.0
# A relay's stream gets a commit marker per this many bytes (and one whenever none is queued),
# so that acknowledgements follow commits closely rather than one behind.
MARK_EVERY_BYTES = 1024 * 1024
# Received from a relay and not acknowledged past this, the relay is near its bound on what it
# keeps in memory and will soon wait for an acknowledgement: its markers ask the writer not to
# wait for more records (it measured 0.25 s idle per batch, and half the voice throughput).
# Three quarters: real-time traffic of ~150 voice sessions keeps ~4 MB unacknowledged over a
# flush interval, and must not turn every loop turn into a commit.
SOON_BYTES = RESEND_LIMIT_BYTES * 3 // 4
# Allocations between two young-generation collections (CPython's default: 700). Every message
# allocates dozens of objects and the writer holds them for a batch, so with the default they
# were traversed again and again, and pushed into full collections: ~20 us per voice message.
GC_YOUNG_THRESHOLD = 10_000


_TYPES = {"str": str, "int": int}


def parse_config(argv: Sequence[str]) -> RecorderConfig:
    parser = argparse.ArgumentParser(prog=f"python -m {RECORDER_MODULE}")
    for name, kind in RecorderConfig.__annotations__.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=_TYPES[kind])
    parser.add_argument("--log-level", default="INFO")
    args = vars(parser.parse_args(argv))
    level = args.pop("log_level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # Alembic's INFO lines on every start say nothing to an operator
        logging.getLogger("alembic").setLevel(logging.WARNING)
    return RecorderConfig(**args)


class _RelayConnection(asyncio.Protocol):
    """One relay's stream of items; acknowledges, one small write per commit, how far the
    records derived from it are committed (the relay keeps the rest to send again)."""

    def __init__(self, server: RecorderServer, number: int) -> None:
        self._server = server
        self._number = number
        self._decoder = Decoder()
        self._received = 0  # bytes of the stream so far
        self._handled = 0  # of those, the items handled (a partial item waits in the decoder)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        # Commit markers in the writer's queue (they take none of its places): one whenever
        # none is there, and one per `MARK_EVERY_BYTES` of the stream.
        self._marked = 0
        self._marked_at = 0  # the newest marker's position
        self._committed = 0  # set by the writer thread
        self._acked = 0  # told the relay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        recording, number = self._server.recording, self._number
        handle = recording.handle
        for item in self._decoder.feed(data):
            handle(number, item)
        self._received += len(data)
        self._handled = self._received - self._decoder.pending_bytes
        if not self._marked or self._handled - self._marked_at >= MARK_EVERY_BYTES:
            self._mark()

    def _mark(self) -> None:
        position = self._handled
        if position <= self._marked_at:
            return
        self._marked += 1
        self._marked_at = position
        # Close to the relay's bound on what it keeps unacknowledged: it will soon wait for us.
        soon = position - self._acked >= SOON_BYTES
        self._server.recording.mark(partial(self._commit, position), soon)

    def _commit(self, position: int) -> None:
        """From the writer thread, once the records before `position` are committed (markers
        are committed in the order they were queued)."""
        self._committed = position
        self._loop.call_soon_threadsafe(self._acknowledge)

    def _acknowledge(self) -> None:
        self._marked -= 1
        committed, transport = self._committed, self._transport
        if committed > self._acked and transport is not None and not transport.is_closing():
            transport.write(HEADER.pack(ACK, 0, 0, committed, time.time(), 0))
            self._acked = committed
        if not self._marked:
            self._mark()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._decoder.pending_bytes:
            logger.warning("relay %d went away in the middle of an item", self._number)
        self._server.relay_disconnected(self._number)


class RecorderServer:
    """The Unix socket the relays connect to, and the process's life cycle."""

    def __init__(self, config: RecorderConfig, recording: Recording) -> None:
        self.config = config
        self.recording = recording
        self.metrics_server: MetricsServer | None = None
        self._relays: set[int] = set()
        self._next_relay = 0
        self._seen_relay = False
        self.done = asyncio.Event()

    def connection(self) -> _RelayConnection:
        self._next_relay += 1
        self._relays.add(self._next_relay)
        self._seen_relay = True
        return _RelayConnection(self, self._next_relay)

    @property
    def relays_connected(self) -> int:
        return len(self._relays)

    def relay_disconnected(self, number: int) -> None:
        self._relays.discard(number)
        self.recording.relay_gone(number)
        if self._seen_relay and not self._relays:
            self.done.set()

    def health(self) -> str | None:
        writer = self.recording.writer
        if not writer.alive:
            return "recorder writer is not running"
        if writer.failing_since is not None:
            return f"database unavailable for {time.monotonic() - writer.failing_since:.0f}s"
        return None

    def health_detail(self) -> str:
        lost = self.recording.relays_lost
        parts = []
        if self.config.restarts:
            parts.append(f"recorder restarted {self.config.restarts} time(s)")
        if lost.get("recorder_down"):
            parts.append(f"{lost['recorder_down']} message(s) relayed while it was down")
        if lost.get("handover_full"):
            parts.append(f"{lost['handover_full']} message(s) dropped while it was behind")
        return "; ".join(parts)


async def serve(config: RecorderConfig) -> int:
    prices = price_table(config.pricing or None)
    observing = observer_config(os.environ) if config.observe_calls == "on" else None
    engine = open_for_writing(config.db)  # DatabaseOpenError: one line for `error: …`
    if config.proxy_id and not config.restarts:  # a restart: the relay re-opens its sessions
        closed = close_orphans(engine, config.proxy_id)
        if closed:
            logger.warning("closed %d session(s) this proxy left open when it stopped", closed)
    labels = property_labels(engine, config.metric_properties, config.metric_property_values)
    metrics = Metrics(CollectorRegistry(), labels.names, labels)
    writer = Writer(
        engine,
        queue_size=config.queue_size,
        flush_interval_s=config.flush_interval_ms / 1000,
        observer=metrics,
        retention_days=config.retention_days,
    )
    writer.start()
    recording = Recording(writer, metrics, prices, config.proxy_id, config.redact_pii == "on")
    if observing is not None:
        recording.observe_calls(observing)
    server = RecorderServer(config, recording)
    if config.metrics_port:
        server.metrics_server = MetricsServer(
            config.metrics_host,
            config.metrics_port,
            metrics.registry,
            server.health,
            server.health_detail,
        )
        server.metrics_server.start()
    if os.path.exists(config.socket):
        os.unlink(config.socket)
    loop = asyncio.get_running_loop()
    unix_server = await loop.create_unix_server(server.connection, config.socket)
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    settle_gc()
    print("ready", flush=True)
    logger.info("recorder ready on %s, recording to %s", config.socket, shown_url(engine.url))
    stop_wait = asyncio.ensure_future(stopping.wait())
    done_wait = asyncio.ensure_future(server.done.wait())
    await asyncio.wait([stop_wait, done_wait], return_when=asyncio.FIRST_COMPLETED)
    unix_server.close()
    if server.relays_connected:  # signalled: give the relays a moment to hand over the rest
        try:
            await asyncio.wait_for(server.done.wait(), RELAYS_GRACE_S)
        except TimeoutError:
            logger.warning("relays still connected after %.0f s; stopping anyway", RELAYS_GRACE_S)
    stop_wait.cancel()
    done_wait.cancel()
    if recording.observer is not None:
        await recording.observer.close()
    recording.close_all(SHUTDOWN_REASON)
    writer.close()
    if server.metrics_server is not None:
        server.metrics_server.stop()
    engine.dispose()
    logger.info("recorder stopped; every queued record was written")
    return 0


def settle_gc() -> None:
    """Once started: what startup built (modules, the engine, the price table) lives as long as
    the process, so no collection traverses it again (`gc.freeze`), and young collections run
    less often. Reference counting still frees every record; cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(serve(config))
    except Exception as exc:
        print(f"error: {_one_line(str(exc))}", flush=True)
        logger.debug("recorder failed to start", exc_info=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
