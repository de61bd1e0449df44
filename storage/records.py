"""What the recorder asks the writer to store: plain, immutable values, one per database change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, dataclass_transform


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record[T](cls: type[T]) -> type[T]:
    """A record class: frozen for the type checker (mypy refuses any assignment to a field),
    plain at run time, where a frozen dataclass's `__init__` (one `object.__setattr__` per
    field) cost ~2.5 us per event record, a tenth of the recorder's work on a message."""
    return dataclass(slots=True, unsafe_hash=True)(cls)  # hashable like a frozen one


@record
class SessionOpened:
    id: str
    started_at: datetime
    api: str
    path: str
    record_mode: str
    model: str | None = None
    upstream: str | None = None
    client_addr: str | None = None
    key_fingerprint: str | None = None
    #: (name, value) pairs the client tagged the session with (`Rtrec-Property-*`).
    properties: tuple[tuple[str, str], ...] = ()
    replay_of: str | None = None
    proxy_id: str | None = None  # host:listen port of the proxy that recorded it
    call_id: str | None = None  # the call a sideband watches (`rtc_…`, `live_…`)
    call_role: str | None = None  # `sideband` (the application's) or `observer` (rtrec's own)


@record
class SessionChanged:
    """Fields learnt from `session.created`/`session.updated`; None leaves a column as it is."""

    id: str
    model: str | None = None
    openai_session_id: str | None = None


@record
class SessionUsageChanged:
    """GPT-Live's per-second billing of a session (the last cumulative values); None leaves a
    column as it is."""

    id: str
    billable_seconds: float | None = None
    active_seconds: float | None = None
    paused_seconds: float | None = None
    context_usage_ratio: float | None = None
    seconds_cost_usd: float | None = None
    usage_final: bool | None = None  # True once `session.closed` gave the final usage
    end_reason: str | None = None  # `session.closed.reason`


@record
class SessionClosed:
    id: str
    ended_at: datetime
    close_code: int | None
    close_reason: str | None
    closed_by: str | None


@record
class EventRecord:
    session_id: str
    seq: int
    ts: datetime
    direction: str
    type: str
    size_bytes: int
    payload: Any = None
    event_id: str | None = None
    response_id: str | None = None
    item_id: str | None = None
    error_type: str | None = None
    error_code: str | None = None


@record
class ResponseCreated:
    session_id: str
    response_id: str
    created_at: datetime
    status: str | None


@record
class ResponseDone:
    """The final state of a response; `usage` maps `responses` column names to counters."""

    session_id: str
    response_id: str
    done_at: datetime
    status: str | None
    status_reason: str | None = None
    usage: dict[str, int | None] = field(default_factory=dict)
    error_type: str | None = None
    error_code: str | None = None
    cost_usd: float | None = None
    cost_estimated: bool | None = None
    time_to_first_audio_ms: float | None = None
    time_to_first_text_ms: float | None = None
    turn_latency_ms: float | None = None
    voice_to_voice_ms: float | None = None
    created_at: datetime | None = None  # from response.created when it was seen
    model: str | None = None  # a GPT-Live delegation's own model; None: the session's
    delegation_id: str | None = None  # the GPT-Live delegation that ran it


@record
class RateLimitRecord:
    session_id: str
    ts: datetime
    name: str | None
    limit_value: int | None
    remaining: int | None
    reset_seconds: float | None
    # The natural key, so a retried batch cannot store an entry twice: the `seq` of the event it
    # came from and its place among that event's entries. The writer fills them when None.
    seq: int | None = None
    position: int | None = None


@record
class TranscriptionRecord:
    session_id: str
    ts: datetime
    item_id: str | None
    model: str | None
    transcript: str | None
    usage_type: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_audio_tokens: int | None = None
    input_text_tokens: int | None = None
    seconds: float | None = None
    cost_usd: float | None = None
    seq: int | None = None  # of the event it came from; the natural key, filled by the writer


@record
class AudioRecord:
    """Base64 audio of one event; decoded by the writer thread, off the proxy's event loop."""

    session_id: str
    seq: int
    ts: datetime
    direction: str
    audio_format: str
    sample_rate: int
    audio_base64: str
    response_id: str | None = None
    item_id: str | None = None


@record
class UpgradeFailed:
    """A `/realtime` upgrade that opened no session: refused by the upstream, or unanswered."""

    ts: datetime
    status: int
    path: str
    reason: str | None = None
    upstream: str | None = None
    client_addr: str | None = None
    proxy_id: str | None = None


@record
class CallSeen:
    """A call rtrec learnt of (created through it, or first steered through it); the first
    sighting wins, later ones change it through `CallChanged`."""

    id: str
    api: str
    created_at: datetime
    transport: str | None = None
    status: str | None = None  # ringing, active, failed, rejected, ended
    model: str | None = None
    config: Any = None  # the session config, secrets redacted
    key_fingerprint: str | None = None
    create_status: int | None = None  # the HTTP status of the create request
    offer: Any = None  # SDP metadata (or the SDP itself under `--record full`)
    answer: Any = None
    upstream: str | None = None
    client_addr: str | None = None
    proxy_id: str | None = None


@record
class CallChanged:
    """What a later request or the observer learnt about a call; None leaves a column as it is."""

    id: str
    status: str | None = None
    model: str | None = None
    config: Any = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    audio_recorded: bool | None = None


@record
class CallEventRecord:
    """One step of a call's life (created, accepted, rejected, referred, hung_up, ...)."""

    call_id: str
    ts: datetime
    kind: str
    status: int | None = None  # the HTTP status of the request, when it was one
    detail: Any = None


Record = (
    SessionOpened
    | SessionChanged
    | SessionUsageChanged
    | SessionClosed
    | EventRecord
    | ResponseCreated
    | ResponseDone
    | RateLimitRecord
    | TranscriptionRecord
    | AudioRecord
    | UpgradeFailed
    | CallSeen
    | CallChanged
    | CallEventRecord
)
