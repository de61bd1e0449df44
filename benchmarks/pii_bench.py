"""The recorder's cost per event of `--redact-pii`: `SessionRecorder.on_message` with and without.

Run as `python -m benchmarks.pii_bench` (or by `benchmarks.run`, scenario `pii`); prints one JSON
object: microseconds per event for the benchmark's voice and small-event mixes, each with the
redaction off and on, and the ratio.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.writer_bench import _session_messages
from recorder.pii_redaction import PiiRedactor
from recorder.session import SessionRecorder
from storage.records import SessionOpened


def _us_per_event(mix: str, events: int, pii: bool) -> float:
    opened = SessionOpened("bench", datetime.now(UTC), "ga", "/v1/realtime", "full")
    recorder = SessionRecorder(opened, pii=PiiRedactor() if pii else None)
    messages = list(itertools.islice(_session_messages(mix), events))  # an endless session
    started = time.perf_counter()
    for from_client, payload in messages:
        recorder.on_message(from_client, payload, True, time.time())
    return (time.perf_counter() - started) * 1e6 / events


def measure(events: int) -> dict[str, Any]:
    """µs per event by mix, off and on: the best of three runs each, on a warm interpreter."""
    results: dict[str, Any] = {}
    for mix in ("voice", "small"):
        off = min(_us_per_event(mix, events, pii=False) for _ in range(3))
        on = min(_us_per_event(mix, events, pii=True) for _ in range(3))
        results[mix] = {"off_us": round(off, 2), "on_us": round(on, 2), "ratio": round(on / off, 2)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pii_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.events)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
