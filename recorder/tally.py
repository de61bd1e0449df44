"""The relayed-message counters, added up in plain dicts and handed to Prometheus when read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import Counter
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from protocol import apis


class _Counters(Protocol):
    events: Counter
    event_bytes: Counter


class RelayedTally(Collector):
    """Counts every relayed message by direction, event type and API, and its bytes.

    A message costs one dict update under one lock instead of two labelled counter increments
    (a label lookup and a lock each); the sums go into `events` and `event_bytes` whenever the
    registry is collected. Registered before those counters, so a scrape sees every message.
    """

    def __init__(self, counters: _Counters) -> None:
        self._counters = counters
        self._lock = threading.Lock()
        self._messages: dict[tuple[str, str, str], int] = {}
        self._bytes: dict[str, int] = {}

    def add(self, direction: str, event_type: str, size_bytes: int, api: str) -> None:
        key = (direction, event_type, api)
        with self._lock:
            self._messages[key] = self._messages.get(key, 0) + 1
            self._bytes[direction] = self._bytes.get(direction, 0) + size_bytes

    def flush(self) -> None:
        """Add what was counted since the last flush to the counters."""
        with self._lock:
            messages, self._messages = self._messages, {}
            sizes, self._bytes = self._bytes, {}
        for (direction, event_type, api), count in messages.items():
            label = apis.metric_event_type(event_type)  # bounded: unknown types are `other`
            self._counters.events.labels(direction, label, api).inc(count)
        for direction, size_bytes in sizes.items():
            self._counters.event_bytes.labels(direction).inc(size_bytes)

    def describe(self) -> list[Metric]:
        return []  # exposes nothing of its own: registering it must not collect (flush) yet

    def collect(self) -> Iterator[Metric]:
        self.flush()
        return iter(())
