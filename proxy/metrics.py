"""Prometheus metrics of spec §5, declared once on an injected registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rtrec import __version__

WRITE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
DURATION_BUCKETS_S = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class _ScrapeTimeGauges(Collector):
    """Values read when Prometheus scrapes: the writer's queue depth and live sessions."""

    def __init__(self, queue_depth: Callable[[], int], active: Callable[[], dict[str, int]]):
        self._queue_depth = queue_depth
        self._active = active

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "openai_realtime_recorder_queue_depth",
            "Records waiting in the recorder's queue for the writer thread.",
        )
        depth.add_metric([], self._queue_depth())
        yield depth
        active = GaugeMetricFamily(
            "openai_realtime_sessions_active",
            "Realtime WebSocket sessions open right now.",
            labels=["model"],
        )
        for model, count in sorted(self._active().items()):
            active.add_metric([model], count)
        yield active


class Metrics:
    """Every metric the proxy exports; tests pass a fresh registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.sessions = Counter(
            "openai_realtime_sessions",
            "Realtime WebSocket sessions opened, by the model named in the URL.",
            ["model"],
            registry=registry,
        )
        self.session_duration = Histogram(
            "openai_realtime_session_duration_seconds",
            "How long Realtime sessions lasted, from upgrade to close.",
            ["model"],
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )
        self.events = Counter(
            "openai_realtime_events",
            "WebSocket messages relayed in Realtime sessions, by direction and event type.",
            ["direction", "type"],
            registry=registry,
        )
        self.event_bytes = Counter(
            "openai_realtime_event_bytes",
            "Payload bytes of WebSocket messages relayed in Realtime sessions.",
            ["direction"],
            registry=registry,
        )
        self.upgrade_failures = Counter(
            "openai_realtime_upgrade_failures",
            "Upgrades to a /realtime endpoint that the upstream refused, by HTTP status.",
            ["status"],
            registry=registry,
        )
        self.dropped = Counter(
            "openai_realtime_recorder_dropped_events",
            "Records the recorder could not store, by reason.",
            ["reason"],
            registry=registry,
        )
        self.write_seconds = Histogram(
            "openai_realtime_recorder_write_seconds",
            "Time the writer thread took to commit one batch.",
            buckets=WRITE_BUCKETS_S,
            registry=registry,
        )
        self.parse_errors = Counter(
            "openai_realtime_recorder_parse_errors",
            "Messages the recorder failed to interpret (they were relayed all the same).",
            ["direction"],
            registry=registry,
        )
        self.db_errors = Counter(
            "openai_realtime_recorder_db_errors",
            "Failed database operations of the writer thread.",
            registry=registry,
        )
        Info(
            "openai_realtime_recorder_build",
            "The rtrec version that serves these metrics.",
            registry=registry,
        ).info({"version": __version__})

    def watch(self, queue_depth: Callable[[], int], active: Callable[[], dict[str, int]]) -> None:
        """Register the scrape-time gauges once the recorder has a queue and sessions."""
        self.registry.register(_ScrapeTimeGauges(queue_depth, active))

    # WriterObserver
    def batch_written(self, records: int, seconds: float) -> None:
        self.write_seconds.observe(seconds)

    def dropped_records(self, reason: str, count: int) -> None:
        self.dropped.labels(reason=reason).inc(count)

    def db_error(self) -> None:
        self.db_errors.inc()
