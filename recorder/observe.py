"""Every traffic metric update, from each hand-over item and its records (docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from protocol import metric_model
from protocol.pricing import BUILTIN_PRICES, PriceTable
from recorder.live_session import LiveSessionRecorder
from recorder.metrics import Metrics
from storage.records import (
    EventRecord,
    RateLimitRecord,
    Record,
    ResponseDone,
    TranscriptionRecord,
)

TokenSeries = dict[tuple[str, str, str], int]


def _n(value: int | None) -> int:
    return max(value or 0, 0)


def token_series(usage: dict[str, int | None]) -> TokenSeries:
    """Tokens by (direction, modality, cached); the series sum to input + output tokens.

    Without `cached_tokens_details` the cached part is attributed to text first (as it is
    priced); tokens the usage does not break down by modality are `unknown`.
    """
    series: TokenSeries = {}

    def add(direction: str, modality: str, cached: bool, tokens: int) -> None:
        if tokens > 0:
            key = (direction, modality, "true" if cached else "false")
            series[key] = series.get(key, 0) + tokens

    by_modality = {m: _n(usage[f"input_{m}_tokens"]) for m in ("text", "audio", "image")}
    cached = {m: usage[f"cached_{m}_tokens"] for m in ("text", "audio", "image")}
    if all(c is None for c in cached.values()) and usage["cached_tokens"] is not None:
        left = _n(usage["cached_tokens"])
        for modality in ("text", "audio", "image"):
            cached[modality] = min(left, by_modality[modality])
            left -= cached[modality] or 0
    for modality, tokens in by_modality.items():
        part = min(_n(cached[modality]), tokens)
        add("input", modality, True, part)
        add("input", modality, False, tokens - part)
    input_total = usage["input_tokens"]
    if input_total is not None:
        add("input", "unknown", False, input_total - sum(by_modality.values()))
    output = {m: _n(usage[f"output_{m}_tokens"]) for m in ("text", "audio")}
    for modality, tokens in output.items():
        add("output", modality, False, tokens)
    output_total = usage["output_tokens"]
    if output_total is not None:
        add("output", "unknown", False, output_total - sum(output.values()))
    return series


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


BUILTIN_TABLE = PriceTable(BUILTIN_PRICES)
# The records other than events that the traffic metrics are counted from.
_OBSERVED = (ResponseDone, RateLimitRecord, TranscriptionRecord)


def observe(
    metrics: Metrics,
    model: str | None,
    rate_limit_key: str,
    records: Sequence[Record],
    prices: PriceTable = BUILTIN_TABLE,
    reported: Collection[str] = (),
    properties: Sequence[str] = (),
    api: str = "ga",
) -> None:
    """Update the traffic metrics from records of a session whose model is `model`.

    Model labels are bounded by `metric_model`: pass the proxy's `prices` and the models the
    server `reported` (`SessionRecorder.reported_models`), else those become `other`.
    `properties` are the session's values for the cost and token counters' property labels.
    """
    label: str | None = None  # the bounded model label, worked out once a record needs it
    for record in records:
        if isinstance(record, EventRecord):
            if record.error_type is None and record.error_code is None:
                continue  # nearly every message: nothing to count but what the tally counts
        elif not isinstance(record, _OBSERVED):
            continue
        if label is None:
            label = metric_model(model, prices, reported)
        _observe_record(metrics, label, rate_limit_key, record, prices, reported, properties, api)


def _observe_record(
    metrics: Metrics,
    model: str,
    rate_limit_key: str,
    record: Record,
    prices: PriceTable,
    reported: Collection[str],
    properties: Sequence[str],
    api: str,
) -> None:
    if isinstance(record, EventRecord):
        _count_error(metrics, model, api, record.error_type, record.error_code)
    elif isinstance(record, ResponseDone):
        # GPT-Live's delegated work names its own model (a Responses or Decisions one).
        own = model if record.model is None else metric_model(record.model, prices, reported)
        _observe_response(metrics, own, api, record, properties)
    elif isinstance(record, RateLimitRecord):
        name = record.name or "unknown"
        if record.limit_value is not None:
            metrics.child(metrics.rate_limit_limit, name, rate_limit_key).set(record.limit_value)
        if record.remaining is not None:
            metrics.child(metrics.rate_limit_remaining, name, rate_limit_key).set(record.remaining)
        if record.reset_seconds is not None:
            reset = metrics.child(metrics.rate_limit_reset, name, rate_limit_key)
            reset.set(record.reset_seconds)
    elif isinstance(record, TranscriptionRecord):
        transcription_model = metric_model(record.model, prices, reported)
        _observe_transcription(metrics, transcription_model, api, record, properties)


def _count_error(
    metrics: Metrics, model: str, api: str, error_type: str | None, code: str | None
) -> None:
    metrics.child(metrics.errors, model, error_type or "", code or "", api).inc()


def _observe_response(
    metrics: Metrics, model: str, api: str, done: ResponseDone, properties: Sequence[str]
) -> None:
    status, reason = done.status or "unknown", done.status_reason or ""
    metrics.child(metrics.responses, model, status, reason).inc()
    if done.error_type is not None or done.error_code is not None:
        _count_error(metrics, model, api, done.error_type, done.error_code)
    # A GPT-Live turn has no usage of its own (the session is billed per second).
    series = token_series(done.usage) if done.usage else {}
    for (direction, modality, cached), tokens in series.items():
        metrics.child(metrics.tokens, model, direction, modality, cached, *properties).inc(tokens)
    if done.cost_usd is not None and done.cost_usd >= 0:
        metrics.child(metrics.cost, model, "response", api, *properties).inc(done.cost_usd)
    if done.created_at is not None:
        duration = (done.done_at - done.created_at).total_seconds()
        metrics.child(metrics.response_duration, model, api).observe(max(duration, 0.0))
    for histogram, ms in (
        (metrics.time_to_first_audio, done.time_to_first_audio_ms),
        (metrics.time_to_first_text, done.time_to_first_text_ms),
        (metrics.turn_latency, done.turn_latency_ms),
        (metrics.voice_to_voice, done.voice_to_voice_ms),
    ):
        seconds = _seconds(ms)
        if seconds is not None:
            metrics.child(histogram, model, api).observe(max(seconds, 0.0))


def _observe_transcription(
    metrics: Metrics, model: str, api: str, record: TranscriptionRecord, properties: Sequence[str]
) -> None:
    details = (
        ("input", "audio", record.input_audio_tokens),
        ("input", "text", record.input_text_tokens),
    )
    for direction, modality, tokens in details:
        if tokens and tokens > 0:
            counter = metrics.child(
                metrics.transcription_tokens, model, direction, modality, *properties
            )
            counter.inc(tokens)
    broken_down = _n(record.input_audio_tokens) + _n(record.input_text_tokens)
    if record.input_tokens is not None and record.input_tokens > broken_down:
        metrics.child(metrics.transcription_tokens, model, "input", "unknown", *properties).inc(
            record.input_tokens - broken_down
        )
    if record.output_tokens and record.output_tokens > 0:
        metrics.child(metrics.transcription_tokens, model, "output", "text", *properties).inc(
            record.output_tokens
        )
    if record.seconds is not None and record.seconds > 0:
        metrics.child(metrics.transcription_seconds, model).inc(record.seconds)
    if record.cost_usd is not None and record.cost_usd >= 0:
        metrics.child(metrics.cost, model, "transcription", api, *properties).inc(record.cost_usd)


def session_opened(metrics: Metrics, model: str | None, prices: PriceTable, api: str) -> None:
    metrics.sessions.labels(model=metric_model(model, prices), api=api).inc()


def session_closed(metrics: Metrics, model_label: str, api: str, seconds: float) -> None:
    metrics.session_duration.labels(model=model_label, api=api).observe(seconds)


def parse_failed(metrics: Metrics, direction: str) -> None:
    metrics.parse_errors.labels(direction=direction).inc()


def upgrade_failed(metrics: Metrics, status: int) -> None:
    metrics.upgrade_failures.labels(status=str(status)).inc()


def unrecorded_upgrade(metrics: Metrics, path_shape: str) -> None:
    """A WebSocket relayed without being recorded, by its (bounded) path shape."""
    metrics.unrecorded_upgrades.labels(path=path_shape).inc()


def relay_dropped(
    metrics: Metrics, reason: str, messages: dict[str, int], size_bytes: dict[str, int]
) -> None:
    """Messages relayed but never handed over: counted as relayed (type `other`) and dropped.
    A drop count is per relay, not per session: its API is not known."""
    for direction, count in messages.items():
        if count:
            metrics.events.labels(direction, "other", "unknown").inc(count)
            metrics.event_bytes.labels(direction).inc(size_bytes[direction])
    metrics.dropped_records(reason, sum(messages.values()))


def live_billing(
    metrics: Metrics, session: LiveSessionRecorder, properties: Sequence[str] = ()
) -> None:
    """GPT-Live's billable seconds, their cost and the context usage, from what the session's
    cumulative usage added since the last call (docs/metrics.md#gpt-live-turns)."""
    increments, ratios = session.take_billing()
    model = session.metric_model
    for kind in ("active", "paused"):
        if increments.get(kind):
            metrics.billable_seconds.labels(model=model, kind=kind).inc(increments[kind])
    if increments.get("cost_usd"):
        cost = increments["cost_usd"]
        metrics.cost.labels(model, "session_seconds", "live", *properties).inc(cost)
    for ratio in ratios:
        metrics.context_usage.labels(model=model).observe(ratio)
