"""The recorder process's CPU per relayed message, without a relay: raw chunks of the benchmark's
traffic (masked client frames, optionally permessage-deflate) fed straight to a `Recording`.

    uv run python -m benchmarks.recorder_profile [--mix voice|small] [--deflate] [--profile]

Prints CPU µs per message of the recorder's loop thread and of the whole process (the writer
thread, committing to a throwaway SQLite file, included); `--profile` adds cProfile's top lines.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator

import orjson
from prometheus_client import CollectorRegistry
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from benchmarks import traffic
from handover import wire
from handover.wire import Item
from protocol.pricing import BUILTIN_PRICES, PriceTable
from recorder.main import settle_gc
from recorder.metrics import Metrics
from recorder.recording import Recording
from storage.db import make_engine, upgrade
from storage.writer import Writer

DEFLATE_HEADER = "permessage-deflate; client_max_window_bits"  # as websockets negotiates it


def _messages(mix: str, count: int) -> Iterator[tuple[bool, bytes]]:
    """(from_client, payload) in the benchmark's proportion: 37 server messages per 10 client."""
    server = traffic.server_events(mix)
    client = traffic.client_event(mix)
    stamps = itertools.count(time.monotonic_ns())
    sent = 0
    for n in itertools.count():
        for _ in range(37):
            yield False, traffic.payload(next(server), next(stamps))
        for _ in range(10):
            yield True, traffic.payload(client, next(stamps))
        sent += 47
        if sent >= count or n > count:
            return


def _chunks(mix: str, count: int, deflate: bool) -> list[tuple[bool, bytes]]:
    """One whole frame per chunk, as the relay hands most of them over; client frames masked."""

    def encoder(from_client: bool) -> list[PerMessageDeflate]:
        # The client compresses with context takeover and a 15-bit window both ways.
        return [PerMessageDeflate(False, False, 15, 15)] if deflate else []

    extensions = {True: encoder(True), False: encoder(False)}
    return [
        (
            from_client,
            Frame(Opcode.TEXT, body).serialize(
                mask=from_client, extensions=extensions[from_client]
            ),
        )
        for from_client, body in _messages(mix, count)
    ]


def _recording(db_url: str) -> tuple[Recording, Writer]:
    engine = make_engine(db_url)
    upgrade(engine)
    # Fed faster than real time: no message may be shed, or its writing would go uncounted.
    writer = Writer(engine, flush_interval_s=0.25, queue_limit_bytes=sys.maxsize)
    writer.start()
    return Recording(writer, Metrics(CollectorRegistry()), PriceTable(BUILTIN_PRICES)), writer


def _open_item(deflate: bool) -> Item:
    fields = {
        "id": "bench-session",
        "started_at": time.time(),
        "api": "ga",
        "path": "/v1/realtime",
        "model": traffic.MODEL,
        "record_mode": "full",
        "raw": True,
        "extensions": DEFLATE_HEADER if deflate else None,
    }
    return Item(wire.OPEN, 0, 1, 0, time.time(), orjson.dumps(fields))


def run(
    mix: str, count: int, deflate: bool, profile: bool, default_gc: bool = False
) -> tuple[float, float]:
    """CPU µs per message: the loop thread's, the process's (writer included)."""
    chunks = _chunks(mix, count, deflate)
    with tempfile.TemporaryDirectory() as tmp:
        recording, writer = _recording(f"sqlite:///{os.path.join(tmp, 'p.db')}")
        if not default_gc:
            settle_gc()  # as the recorder process does once started
        handle = recording.handle
        handle(0, _open_item(deflate))
        items = [
            Item(wire.RAW, wire.FROM_CLIENT if c else 0, 1, seq + 1, time.time(), chunk)
            for seq, (c, chunk) in enumerate(chunks)
        ]
        profiler = cProfile.Profile() if profile else None
        thread0, process0 = time.thread_time(), time.process_time()
        if profiler is not None:
            profiler.enable()
        for item in items:
            handle(0, item)
        if profiler is not None:
            profiler.disable()
        thread_s = time.thread_time() - thread0
        writer.flush()
        process_s = time.process_time() - process0
        writer.close()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return thread_s * 1e6 / len(items), process_s * 1e6 / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mix", choices=("voice", "small"), default="voice")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--default-gc", action="store_true", help="without settle_gc()")
    args = parser.parse_args()
    loop_us, process_us = run(args.mix, args.messages, args.deflate, args.profile, args.default_gc)
    print(
        f"{args.mix}{' deflate' if args.deflate else ''}: "
        f"loop {loop_us:.1f} µs/msg, process {process_us:.1f} µs/msg"
    )


if __name__ == "__main__":
    main()
