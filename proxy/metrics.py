"""Prometheus metrics of docs/metrics.md, declared once on an injected registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rtrec import __version__

# queue_full, db_*: the writer's; handover_full, recorder_down: the relay's hand-over.
DROP_REASONS = (
    "queue_full",
    "db_error",
    "db_unavailable",
    "no_writer",
    "handover_full",
    "recorder_down",
)
WRITE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
DURATION_BUCKETS_S = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
# docs/metrics.md#buckets: latency buckets cover 10 ms to 30 s.
LATENCY_BUCKETS_S = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
)


class WriterState(Protocol):
    """What the scrape-time gauges read from the writer."""

    @property
    def depth(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def alive(self) -> bool: ...
    @property
    def failing_since(self) -> float | None: ...


class _ScrapeTimeGauges(Collector):
    """Values read when Prometheus scrapes: the writer's queue, the database, live sessions."""

    def __init__(self, writer: WriterState, active: Callable[[], dict[str, int]]):
        self._writer = writer
        self._active = active

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "openai_realtime_recorder_queue_depth",
            "Messages waiting in the recorder's queue for the writer thread.",
        )
        depth.add_metric([], self._writer.depth)
        yield depth
        capacity = GaugeMetricFamily(
            "openai_realtime_recorder_queue_capacity",
            "Messages the recorder's queue holds before it drops (--queue-size).",
        )
        capacity.add_metric([], self._writer.capacity)
        yield capacity
        available = GaugeMetricFamily(
            "openai_realtime_recorder_database_available",
            "1 while the writer runs and its last write reached the database, else 0.",
        )
        writer_ok = self._writer.alive and self._writer.failing_since is None
        available.add_metric([], 1 if writer_ok else 0)
        yield available
        active = GaugeMetricFamily(
            "openai_realtime_sessions_active",
            "Realtime WebSocket sessions open right now.",
            labels=["model"],
        )
        for model, count in sorted(self._active().items()):
            active.add_metric([model], count)
        yield active


# `--metric-properties`: each property label keeps this many distinct values, the rest are `other`.
PROPERTY_LABEL_VALUES = 50
PROPERTY_LABEL_CHARS = 64


class Metrics:
    """Every metric the proxy exports; tests pass a fresh registry.

    `property_labels` (the `--metric-properties` allow-list) become extra labels of the cost and
    token counters, with bounded values: see `property_label_values`.
    """

    def __init__(self, registry: CollectorRegistry, property_labels: Sequence[str] = ()) -> None:
        self.registry = registry
        self.property_labels = tuple(property_labels)
        self._property_values: dict[str, set[str]] = {name: set() for name in property_labels}
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
        self.responses = Counter(
            "openai_realtime_responses",
            "Responses finished (response.done), by status and status_details.reason.",
            ["model", "status", "reason"],
            registry=registry,
        )
        self.tokens = Counter(
            "openai_realtime_tokens",
            "Tokens billed in response.done usage; cached is the cached part of input.",
            ["model", "direction", "modality", "cached", *self.property_labels],
            registry=registry,
        )
        self.transcription_tokens = Counter(
            "openai_realtime_transcription_tokens",
            "Tokens billed for input-audio transcription, by the transcription model.",
            ["model", "direction", "modality", *self.property_labels],
            registry=registry,
        )
        self.transcription_seconds = Counter(
            "openai_realtime_transcription_audio_seconds",
            "Seconds of audio billed for duration-priced input transcription.",
            ["model"],
            registry=registry,
        )
        self.cost = Counter(
            "openai_realtime_cost_usd",
            "Cost in US dollars of responses and transcriptions, from the price table.",
            ["model", "kind", *self.property_labels],
            registry=registry,
        )
        self.rate_limit_limit = Gauge(
            "openai_realtime_rate_limit_limit",
            "The limit of the newest rate_limits.updated entry, by bucket and API key.",
            ["name", "key"],
            registry=registry,
        )
        self.rate_limit_remaining = Gauge(
            "openai_realtime_rate_limit_remaining",
            "What remains of the limit in the newest rate_limits.updated entry.",
            ["name", "key"],
            registry=registry,
        )
        self.rate_limit_reset = Gauge(
            "openai_realtime_rate_limit_reset_seconds",
            "Seconds until the limit resets, from the newest rate_limits.updated entry.",
            ["name", "key"],
            registry=registry,
        )
        self.errors = Counter(
            "openai_realtime_errors",
            "Errors: error events, failed responses and failed transcriptions, by type and code.",
            ["model", "type", "code"],
            registry=registry,
        )
        self.response_duration = self._latency(
            "openai_realtime_response_duration_seconds",
            "Time from response.created to response.done.",
        )
        self.time_to_first_audio = self._latency(
            "openai_realtime_time_to_first_audio_seconds",
            "Time from response.created to the response's first audio delta.",
        )
        self.time_to_first_text = self._latency(
            "openai_realtime_time_to_first_text_seconds",
            "Time from response.created to the response's first text or transcript delta.",
        )
        self.turn_latency = self._latency(
            "openai_realtime_turn_latency_seconds",
            "Time from the server's speech_stopped to the first audio delta of its response.",
        )
        self.voice_to_voice = self._latency(
            "openai_realtime_voice_to_voice_seconds",
            "Time from relaying the client audio that ends the user's speech to the first "
            "audio delta of the answer.",
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
        # Known label values exist from the start, so "no drops" is a 0 series, not no data.
        for reason in DROP_REASONS:
            self.dropped.labels(reason=reason)
        for direction in ("client", "server"):
            self.parse_errors.labels(direction=direction)
        Info(
            "openai_realtime_recorder_build",
            "The rtrec version that serves these metrics.",
            registry=registry,
        ).info({"version": __version__})

    def property_label_values(self, properties: Mapping[str, str]) -> tuple[str, ...]:
        """A session's values for the property labels: empty when unset, cut to a bounded
        length, and `other` once a label has seen its share of distinct values."""
        values = []
        for name in self.property_labels:
            value = properties.get(name, "")[:PROPERTY_LABEL_CHARS]
            seen = self._property_values[name]
            if value and value not in seen:
                if len(seen) < PROPERTY_LABEL_VALUES:
                    seen.add(value)
                else:
                    value = "other"
            values.append(value)
        return tuple(values)

    def _latency(self, name: str, documentation: str) -> Histogram:
        return Histogram(
            name, documentation, ["model"], buckets=LATENCY_BUCKETS_S, registry=self.registry
        )

    def watch(self, writer: WriterState, active: Callable[[], dict[str, int]]) -> None:
        """Register the scrape-time gauges once the recorder has a writer and sessions."""
        self.registry.register(_ScrapeTimeGauges(writer, active))

    # WriterObserver
    def batch_written(self, records: int, seconds: float) -> None:
        self.write_seconds.observe(seconds)

    def dropped_records(self, reason: str, count: int) -> None:
        self.dropped.labels(reason=reason).inc(count)

    def db_error(self) -> None:
        self.db_errors.inc()
