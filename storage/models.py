"""SQLAlchemy models of the recorded tables (docs/schema.md); Alembic migrations make the schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.event_index import INDEXED_CONDITION

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for event volumes.
RowId = BigInteger().with_variant(Integer(), "sqlite")
# none_as_null: a payload of None (`--record metadata`) is SQL NULL, not the JSON text `null`.
Payload = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
UtcDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime}


def _session_fk() -> Mapped[str]:
    return mapped_column(String(36), ForeignKey("sessions.id", ondelete="CASCADE"), index=False)


class RealtimeSession(Base):
    """One WebSocket connection to a `/realtime` endpoint."""

    __tablename__ = "sessions"
    __table_args__ = (Index(None, "proxy_id", "ended_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    model: Mapped[str | None] = mapped_column(String(200))
    api: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    upstream: Mapped[str | None] = mapped_column(Text)
    client_addr: Mapped[str | None] = mapped_column(String(100))
    openai_session_id: Mapped[str | None] = mapped_column(String(200))
    close_code: Mapped[int | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[str | None] = mapped_column(String(8))
    key_fingerprint: Mapped[str | None] = mapped_column(String(16))
    record_mode: Mapped[str] = mapped_column(String(16))
    # The session this one replays (`rtrec replay`); no foreign key: the original may be pruned.
    replay_of: Mapped[str | None] = mapped_column(String(64), index=True)
    # The proxy that recorded it (host:listen port): it closes what it left open at its next start.
    proxy_id: Mapped[str | None] = mapped_column(String(300))
    # GPT-Live's per-second billing: the last cumulative values of the session's usage events.
    billable_seconds: Mapped[float | None] = mapped_column(Float)
    active_seconds: Mapped[float | None] = mapped_column(Float)
    paused_seconds: Mapped[float | None] = mapped_column(Float)
    context_usage_ratio: Mapped[float | None] = mapped_column(Float)
    seconds_cost_usd: Mapped[float | None] = mapped_column(Float)
    usage_final: Mapped[bool | None]  # session.closed gave the usage: it is final
    end_reason: Mapped[str | None] = mapped_column(String(64))  # session.closed.reason
    # The call this sideband watches; no foreign key: a sideband may watch a call rtrec never saw.
    call_id: Mapped[str | None] = mapped_column(String(200), index=True)
    call_role: Mapped[str | None] = mapped_column(String(16))  # sideband | observer


class Call(Base):
    """A WebRTC or SIP call created or steered through rtrec; its media never passes the proxy."""

    __tablename__ = "calls"

    # `rtc_…`/`live_…`; a UUID for a create the upstream refused (it named no call).
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    api: Mapped[str] = mapped_column(String(8))
    transport: Mapped[str | None] = mapped_column(String(8))  # webrtc | sip
    status: Mapped[str | None] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(200))
    config: Mapped[Any | None] = mapped_column(Payload)
    key_fingerprint: Mapped[str | None] = mapped_column(String(16))
    create_status: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    offer: Mapped[Any | None] = mapped_column(Payload)
    answer: Mapped[Any | None] = mapped_column(Payload)
    audio_recorded: Mapped[bool] = mapped_column(default=False, server_default=false())
    upstream: Mapped[str | None] = mapped_column(Text)
    client_addr: Mapped[str | None] = mapped_column(String(100))
    proxy_id: Mapped[str | None] = mapped_column(String(300))


class CallEvent(Base):
    """One step of a call's life: a control request (and its status) or an observer's sighting."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("call_id", "ts", "kind"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(200), ForeignKey("calls.id", ondelete="CASCADE"))
    ts: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[int | None]
    detail: Mapped[Any | None] = mapped_column(Payload)


class UpgradeFailure(Base):
    """A `/realtime` upgrade the upstream refused or never answered: no session was opened."""

    __tablename__ = "upgrade_failures"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[int]  # the upstream's HTTP status; 502 when it could not be reached
    reason: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)  # secrets redacted
    upstream: Mapped[str | None] = mapped_column(Text)
    client_addr: Mapped[str | None] = mapped_column(String(100))
    proxy_id: Mapped[str | None] = mapped_column(String(300))


class SessionProperty(Base):
    """A name/value tag a client gave its session (`Rtrec-Property-<Name>` header)."""

    __tablename__ = "session_properties"
    # (name, value): filtering and grouping by a property; (session_id, name): one value each.
    __table_args__ = (UniqueConstraint("session_id", "name"), Index(None, "name", "value"))

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = _session_fk()
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(256))


class Event(Base):
    """One WebSocket message, either direction, in arrival order."""

    __tablename__ = "events"
    # (session_id, type): the dashboard's search, error filters and per-session lookups; streamed
    # events left out (storage/event_index.py).
    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        Index(
            None,
            "session_id",
            "type",
            sqlite_where=text(INDEXED_CONDITION),
            postgresql_where=text(INDEXED_CONDITION),
        ),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = _session_fk()
    seq: Mapped[int]
    ts: Mapped[datetime]
    direction: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str | None] = mapped_column(String(200))
    response_id: Mapped[str | None] = mapped_column(String(200))
    item_id: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int]
    payload: Mapped[Any | None] = mapped_column(Payload)
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(200))


class Response(Base):
    """One model response, from `response.created` to `response.done`, with its usage."""

    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("session_id", "response_id"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = _session_fk()
    response_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    status: Mapped[str | None] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens: Mapped[int | None] = mapped_column(BigInteger)
    input_text_tokens: Mapped[int | None] = mapped_column(BigInteger)
    input_audio_tokens: Mapped[int | None] = mapped_column(BigInteger)
    input_image_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cached_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cached_text_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cached_audio_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cached_image_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_text_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_audio_tokens: Mapped[int | None] = mapped_column(BigInteger)
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(200))
    cost_usd: Mapped[float | None] = mapped_column(Float)
    cost_estimated: Mapped[bool | None]
    time_to_first_audio_ms: Mapped[float | None] = mapped_column(Float)
    time_to_first_text_ms: Mapped[float | None] = mapped_column(Float)
    turn_latency_ms: Mapped[float | None] = mapped_column(Float)
    voice_to_voice_ms: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(200))  # NULL: the session's model
    delegation_id: Mapped[str | None] = mapped_column(String(200))  # GPT-Live delegation


class RateLimit(Base):
    """One entry of a `rate_limits.updated` event."""

    __tablename__ = "rate_limits"
    __table_args__ = (
        Index(None, "session_id", "ts"),
        Index(None, "session_id", "seq", "position", unique=True),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = _session_fk()
    ts: Mapped[datetime]
    name: Mapped[str | None] = mapped_column(String(200))
    limit_value: Mapped[int | None] = mapped_column(BigInteger)
    remaining: Mapped[int | None] = mapped_column(BigInteger)
    reset_seconds: Mapped[float | None] = mapped_column(Float)
    seq: Mapped[int | None]  # of its `rate_limits.updated` event
    position: Mapped[int | None]  # its place among that event's entries


class Transcription(Base):
    """A completed input-audio transcription, billed at the ASR model's price."""

    __tablename__ = "transcriptions"
    __table_args__ = (
        Index(None, "session_id", "item_id"),
        Index(None, "session_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = _session_fk()
    ts: Mapped[datetime]
    item_id: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    transcript: Mapped[str | None] = mapped_column(Text)
    usage_type: Mapped[str | None] = mapped_column(String(16))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens: Mapped[int | None] = mapped_column(BigInteger)
    input_audio_tokens: Mapped[int | None] = mapped_column(BigInteger)
    input_text_tokens: Mapped[int | None] = mapped_column(BigInteger)
    seconds: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    seq: Mapped[int | None]  # of its transcription event


class AudioChunk(Base):
    """Decoded audio of consecutive appends or deltas of one side and response, with its format.

    `chunks` lists each chunk's `seq`, time after `ts` (µs) and length; NULL for a single chunk
    (storage/audio_segments.py).
    """

    __tablename__ = "audio_chunks"
    __table_args__ = (
        Index(None, "session_id", "direction", "seq"),
        Index(None, "session_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = _session_fk()
    seq: Mapped[int]
    ts: Mapped[datetime]
    direction: Mapped[str] = mapped_column(String(8))
    response_id: Mapped[str | None] = mapped_column(String(200))
    item_id: Mapped[str | None] = mapped_column(String(200))
    audio_format: Mapped[str] = mapped_column(String(16))
    sample_rate: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    last_seq: Mapped[int | None]  # of the segment's last chunk; NULL for rows before segments
    chunks: Mapped[str | None] = mapped_column(Text)


def table(model: type[Base]) -> Table:
    """The Core table of `model`, for fast executemany inserts and bulk updates."""
    return Base.metadata.tables[model.__tablename__]
