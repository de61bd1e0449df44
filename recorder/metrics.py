"""Prometheus metrics of docs/metrics.md, declared once on an injected registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from recorder.property_labels import PropertyLabels
from recorder.tally import RelayedTally

# queue_full, db_*, no_writer: the writer's; handover_full, recorder_down: the relay's hand-over;
# deflate_context: compressed messages after a gap, which no recorder can inflate.
DROP_REASONS = (
    "queue_full",
    "db_error",
    "db_unavailable",
    "no_writer",
    "handover_full",
    "recorder_down",
    "deflate_context",
)
# A message whose session the recorder never heard open (its records would have no session row),
# and an open for a session it already records (kept as first opened).
UNKNOWN_SESSION = "unknown_session"
REOPENED_SESSION = "reopened_session"
HANDOVER_ANOMALIES = (UNKNOWN_SESSION, REOPENED_SESSION)
# Why --observe-calls could not attach a sideband: the key, the call, the service, the network.
ATTACH_FAILURE_REASONS = ("unauthorized", "unknown_call", "refused", "unreachable")
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

CONTEXT_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)

NAMESPACE = "openai_realtime"


def rtrec_version() -> str:
    """The installed rtrec's version, read from its package metadata: the proxy does not import
    the CLI package (`rtrec.__version__`) that sits above it."""
    try:
        return version("rtrec")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def metric_name(name: str, subsystem: str = "") -> str:
    """`name` as client_python spells it with rtrec's namespace and the optional subsystem."""
    return "_".join(part for part in (NAMESPACE, subsystem, name) if part)


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


def _gauge_now(name: str, documentation: str, value: int) -> GaugeMetricFamily:
    """A gauge family holding one unlabelled sample."""
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


class _ScrapeTimeGauges(Collector):
    """Values read when Prometheus scrapes: the writer's queue, the database, live sessions."""

    def __init__(self, writer: WriterState, active: Callable[[], dict[tuple[str, str], int]]):
        self._writer = writer
        self._active = active

    def collect(self) -> Iterator[GaugeMetricFamily]:
        writer = self._writer
        writer_ok = writer.alive and writer.failing_since is None
        yield _gauge_now(
            metric_name("queue_depth", "recorder"),
            "Messages waiting in the recorder's queue for the writer thread.",
            writer.depth,
        )
        yield _gauge_now(
            metric_name("queue_capacity", "recorder"),
            "Messages the recorder's queue holds before it drops (--queue-size).",
            writer.capacity,
        )
        yield _gauge_now(
            metric_name("database_available", "recorder"),
            "1 while the writer runs and its last write reached the database, else 0.",
            1 if writer_ok else 0,
        )
        family = GaugeMetricFamily(
            metric_name("sessions_active"),
            "Recorded WebSocket sessions open right now, by model and API.",
            labels=["model", "api"],
        )
        for (model, api), count in sorted(self._active().items()):
            family.add_metric([model, api], count)
        yield family


class _Declared[M: (Counter, Gauge, Histogram)]:
    """One metric in the body of `Metrics`, made on each instance's own registry.

    It only declares and types: `Metrics.__init__` stores the made metric on the instance under
    the same attribute, which shadows this (non-data) descriptor from then on.
    """

    def __init__(
        self,
        kind: Callable[..., M],
        name: str,
        labels: Sequence[str],
        documentation: str,
        subsystem: str = "",
        by_properties: bool = False,
        buckets: Sequence[float] = (),
    ) -> None:
        self.kind: Callable[..., M] = kind
        self.name = name
        self.labels = tuple(labels)
        self.documentation = documentation
        self.subsystem = subsystem
        self.by_properties = by_properties  # the `--metric-properties` labels follow `labels`
        self.buckets = buckets

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def make(self, registry: CollectorRegistry, property_labels: Sequence[str]) -> M:
        labels = (*self.labels, *property_labels) if self.by_properties else self.labels
        options = {"buckets": self.buckets} if self.buckets else {}
        return self.kind(
            self.name,
            self.documentation,
            labels,
            namespace=NAMESPACE,
            subsystem=self.subsystem,
            registry=registry,
            **options,
        )

    def __get__(self, metrics: object, owner: type | None = None) -> M:
        raise AttributeError(f"{self.attribute} is made by Metrics.__init__")


def _counter(
    name: str,
    labels: Sequence[str],
    documentation: str,
    subsystem: str = "",
    by_properties: bool = False,
) -> _Declared[Counter]:
    return _Declared(Counter, name, labels, documentation, subsystem, by_properties)


def _gauge(name: str, labels: Sequence[str], documentation: str) -> _Declared[Gauge]:
    return _Declared(Gauge, name, labels, documentation)


def _histogram(
    name: str,
    labels: Sequence[str],
    documentation: str,
    buckets: Sequence[float],
    subsystem: str = "",
) -> _Declared[Histogram]:
    return _Declared(Histogram, name, labels, documentation, subsystem, buckets=buckets)


def _latency(name: str, documentation: str) -> _Declared[Histogram]:
    return _histogram(name, ["model", "api"], documentation, LATENCY_BUCKETS_S)


class Metrics:
    """Every metric the proxy exports; tests pass a fresh registry.

    Each metric is one entry below, named without the `openai_realtime` namespace (and the
    `recorder` subsystem) that client_python puts in front. `property_labels` (the
    `--metric-properties` allow-list) become extra labels of the cost and token counters, with
    bounded values: see `property_label_values`.
    """

    sessions = _counter(
        "sessions",
        ["model", "api"],
        "Recorded WebSocket sessions opened, by the model named in the URL and the API.",
    )
    session_duration = _histogram(
        "session_duration_seconds",
        ["model", "api"],
        "How long recorded sessions lasted, from upgrade to close.",
        DURATION_BUCKETS_S,
    )
    events = _counter(
        "events",
        ["direction", "type", "api"],
        "WebSocket messages relayed in recorded sessions, by direction, event type and API.",
    )
    event_bytes = _counter(
        "event_bytes",
        ["direction"],
        "Payload bytes of WebSocket messages relayed in Realtime sessions.",
    )
    responses = _counter(
        "responses",
        ["model", "status", "reason"],
        "Responses finished (response.done), by status and status_details.reason.",
    )
    tokens = _counter(
        "tokens",
        ["model", "direction", "modality", "cached"],
        "Tokens billed in response.done usage; cached is the cached part of input.",
        by_properties=True,
    )
    transcription_tokens = _counter(
        "transcription_tokens",
        ["model", "direction", "modality"],
        "Tokens billed for input-audio transcription, by the transcription model.",
        by_properties=True,
    )
    transcription_seconds = _counter(
        "transcription_audio_seconds",
        ["model"],
        "Seconds of audio billed for duration-priced input transcription.",
    )
    cost = _counter(
        "cost_usd",
        ["model", "kind", "api"],
        "Cost in US dollars of responses, transcriptions and GPT-Live session seconds.",
        by_properties=True,
    )
    rate_limit_limit = _gauge(
        "rate_limit_limit",
        ["name", "key"],
        "The limit of the newest rate_limits.updated entry, by bucket and API key.",
    )
    rate_limit_remaining = _gauge(
        "rate_limit_remaining",
        ["name", "key"],
        "What remains of the limit in the newest rate_limits.updated entry.",
    )
    rate_limit_reset = _gauge(
        "rate_limit_reset_seconds",
        ["name", "key"],
        "Seconds until the limit resets, from the newest rate_limits.updated entry.",
    )
    errors = _counter(
        "errors",
        ["model", "type", "code", "api"],
        "Errors: error events, failed responses and failed transcriptions, by type and code.",
    )
    response_duration = _latency(
        "response_duration_seconds", "Time from response.created to response.done."
    )
    time_to_first_audio = _latency(
        "time_to_first_audio_seconds",
        "Time from response.created to the response's first audio delta.",
    )
    time_to_first_text = _latency(
        "time_to_first_text_seconds",
        "Time from response.created to the response's first text or transcript delta.",
    )
    turn_latency = _latency(
        "turn_latency_seconds",
        "Time from the server's speech_stopped to the first audio delta of its response.",
    )
    voice_to_voice = _latency(
        "voice_to_voice_seconds",
        "Time from relaying the client audio that ends the user's speech to the first "
        "audio delta of the answer.",
    )
    billable_seconds = _counter(
        "billable_seconds",
        ["model", "kind"],
        "GPT-Live session seconds billed (active or paused standby), from cumulative usage.",
    )
    context_usage = _histogram(
        "context_usage_ratio",
        ["model"],
        "GPT-Live context-window usage ratio reported in session.usage.updated events.",
        CONTEXT_RATIO_BUCKETS,
    )
    unrecorded_upgrades = _counter(
        "unrecorded_upgrades",
        ["path"],
        "WebSocket upgrades relayed without being recorded, by path shape (ids as {id}).",
    )
    upgrade_failures = _counter(
        "upgrade_failures",
        ["status"],
        "Upgrades to a /realtime endpoint that the upstream refused, by HTTP status.",
    )
    calls = _counter(
        "calls",
        ["api", "transport", "outcome"],
        "WebRTC and SIP calls created or answered through rtrec, by their first decisive step.",
    )
    observer_attach_failures = _counter(
        "observer_attach_failures",
        ["reason"],
        "Sidebands --observe-calls could not attach to a call (the call itself is unaffected).",
    )
    dropped = _counter(
        "dropped_events",
        ["reason"],
        "Records the recorder could not store, by reason.",
        subsystem="recorder",
    )
    write_seconds = _histogram(
        "write_seconds",
        [],
        "Time the writer thread took to commit one batch.",
        WRITE_BUCKETS_S,
        subsystem="recorder",
    )
    parse_errors = _counter(
        "parse_errors",
        ["direction"],
        "Messages the recorder failed to interpret (they were relayed all the same).",
        subsystem="recorder",
    )
    db_errors = _counter(
        "db_errors", [], "Failed database operations of the writer thread.", subsystem="recorder"
    )
    handover_anomalies = _counter(
        "handover_anomalies",
        ["kind"],
        "Hand-over items the recorder set aside: a message for a session it does not know, "
        "or a session opened again.",
        subsystem="recorder",
    )

    def __init__(
        self,
        registry: CollectorRegistry,
        property_labels: Sequence[str] = (),
        property_values: PropertyLabels | None = None,
    ) -> None:
        self.registry = registry
        self._children: dict[tuple[object, tuple[str, ...]], object] = {}
        # First in the registry: it adds its sums to `events`/`event_bytes` before they are read.
        self.relayed = RelayedTally(self)
        registry.register(self.relayed)
        self.property_labels = tuple(property_labels)
        self._property_values = property_values or PropertyLabels(self.property_labels)
        for declared in vars(Metrics).values():
            if isinstance(declared, _Declared):
                made = declared.make(registry, self.property_labels)
                setattr(self, declared.attribute, made)
        build = Info(
            "build",
            "The rtrec version that serves these metrics.",
            registry=registry,
            namespace=NAMESPACE,
            subsystem="recorder",
        )
        build.info({"version": rtrec_version()})
        # Known label values exist from the start, so "no drops" is a 0 series, not no data.
        for reason in DROP_REASONS:
            self.dropped.labels(reason=reason)
        for direction in ("client", "server"):
            self.parse_errors.labels(direction=direction)
        for kind in HANDOVER_ANOMALIES:
            self.handover_anomalies.labels(kind=kind)
        for reason in ATTACH_FAILURE_REASONS:
            self.observer_attach_failures.labels(reason=reason)

    def child[M: (Counter, Gauge, Histogram)](self, metric: M, *values: str) -> M:
        """`metric.labels(*values)`, found once: a lookup costs ~1.5 µs, and each response
        updates a dozen series."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child  # type: ignore[return-value]

    def property_label_values(self, properties: Mapping[str, str]) -> tuple[str, ...]:
        """A session's values for the property labels (`recorder.property_labels`)."""
        return self._property_values.values(properties)

    def watch(self, writer: WriterState, active: Callable[[], dict[tuple[str, str], int]]) -> None:
        """Register the scrape-time gauges once the recorder has a writer and sessions."""
        self.registry.register(_ScrapeTimeGauges(writer, active))

    # WriterObserver
    def batch_written(self, records: int, seconds: float) -> None:
        self.write_seconds.observe(seconds)

    def dropped_records(self, reason: str, count: int) -> None:
        self.dropped.labels(reason=reason).inc(count)

    def db_error(self) -> None:
        self.db_errors.inc()
