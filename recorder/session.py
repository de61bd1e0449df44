"""Turns one Realtime connection's messages into storage records (no mitmproxy, no I/O)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import protocol
from protocol import base64_decoded_size, event_refs, live, parse_frame
from protocol.audio import AUDIO_FIELD, DELTA_FIELD, is_audio_delta
from protocol.pii import redact_pii
from protocol.pricing import BUILTIN_PRICES, PriceTable, response_cost, transcription_cost
from protocol.redact import (
    flat_event_holds_secret,
    might_hold_secret,
    redact_free_text,
    redact_value,
)
from recorder.pii_redaction import PiiRedactor, redact_strings
from storage.records import (
    AudioRecord,
    EventRecord,
    RateLimitRecord,
    Record,
    ResponseCreated,
    ResponseDone,
    SessionChanged,
    SessionClosed,
    SessionOpened,
    TranscriptionRecord,
)

MAX_REPORTED_MODELS = 16


@dataclass
class ResponseTiming:
    """Frame timestamps of one response, for the latency columns."""

    created_ts: float | None  # None: response.created was never seen
    output_format: protocol.AudioFormat | None = None
    first_audio_ts: float | None = None
    first_text_ts: float | None = None
    speech_stopped_ts: float | None = None  # the server's speech_stopped that started this turn
    speech_end_ts: float | None = None  # when the client audio holding its audio_end_ms went by


@dataclass
class InputAudioClock:
    """Maps `audio_end_ms` (ms of audio appended in the session) to when the proxy relayed it."""

    appended_ms: float = 0.0
    marks: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=4096))

    def append(self, size_bytes: int, fmt: protocol.AudioFormat, ts: float) -> None:
        self.appended_ms += size_bytes * 1000.0 / fmt.bytes_per_second
        self.marks.append((self.appended_ms, ts))

    def relayed_at(self, audio_ms: float) -> float | None:
        """When the append that contains `audio_ms` was relayed; older marks are forgotten."""
        while self.marks:
            end_ms, ts = self.marks[0]
            if end_ms >= audio_ms:
                return ts
            self.marks.popleft()
        return None


# The high-frequency events that carry audio, and the field holding it (`strip_audio`'s rule).
_OWN_AUDIO_FIELD = {
    event_type: DELTA_FIELD if is_audio_delta(event_type) else AUDIO_FIELD
    for event_type in (
        *protocol.AUDIO_DELTAS,
        live.OUTPUT_AUDIO_DELTA,
        protocol.AUDIO_APPEND,
        live.INPUT_AUDIO_APPEND,
    )
}
# The high-frequency events without audio: their `audio` field, if any, would be stripped.
_TEXT_DELTAS = protocol.TEXT_DELTAS | {live.INPUT_TRANSCRIPT_DELTA, live.OUTPUT_TRANSCRIPT_DELTA}
_NEEDLE_HEAD_BYTES = 16
_ODD_TYPES = frozenset((protocol.BINARY, protocol.INVALID))
_OUTPUT_DELTAS = protocol.AUDIO_DELTAS | protocol.TEXT_DELTAS


def without_first(content: bytes, part: bytes) -> bytes:
    """`content.replace(part, b"", 1)`, without its cost for a part of kilobytes (CPython
    prepares a long needle before searching): find its first bytes, then compare the rest."""
    head = part[:_NEEDLE_HEAD_BYTES]
    at = content.find(head)
    while at >= 0:
        if content.startswith(part, at):
            return content[:at] + content[at + len(part) :]
        at = content.find(head, at + 1)
    return content


def utc(ts: float) -> datetime:
    """A relay timestamp (seconds since the epoch) as a UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def ms_between(start: float | None, end: float | None) -> float | None:
    """Milliseconds from `start` to `end`, None unless both were seen."""
    if start is None or end is None:
        return None
    return round((end - start) * 1000.0, 3)


@dataclass
class SessionRecorder:
    """State of one recorded WebSocket: sequence numbers, audio formats, open responses."""

    opened: SessionOpened
    record_mode: str = "full"
    seq: int = 0
    model: str | None = None
    input_format: protocol.AudioFormat = protocol.PCM16
    output_format: protocol.AudioFormat = protocol.PCM16
    transcription_model: str | None = None
    responses: dict[str, ResponseTiming] = field(default_factory=dict)
    prices: PriceTable = field(default_factory=lambda: PriceTable(BUILTIN_PRICES))
    input_clock: InputAudioClock = field(default_factory=InputAudioClock)
    pending_turn: tuple[float, float | None] | None = None
    rate_limit_key: str = "unknown"  # metric label: key fingerprint, or `ephemeral`
    # Models (session and transcription) the server named: trusted as metric labels, unlike
    # the client's `?model=`. Bounded, in case a server renames its model on every update.
    reported_models: set[str] = field(default_factory=set)
    pii: PiiRedactor | None = None  # `--redact-pii`

    # Events whose `error` object is stored as the event's error type and code.
    error_events: ClassVar[frozenset[str]] = protocol.ERROR_EVENTS

    def __post_init__(self) -> None:
        self.model = self.opened.model

    @property
    def id(self) -> str:
        return self.opened.id

    @property
    def metric_model(self) -> str:
        """This session's `model` metric label (`protocol.metric_model`)."""
        return protocol.metric_model(self.model, self.prices, self.reported_models)

    def on_message(
        self, from_client: bool, content: bytes, is_text: bool, ts: float
    ) -> list[Record]:
        """Records for one message: its event row, plus responses, limits, audio it carries."""
        # The seq is taken only on success, so the caller's fallback event reuses it: no gaps.
        records = self._message_records(self.seq, from_client, content, is_text, ts)
        self.seq += 1
        return records

    def _message_records(
        self, seq: int, from_client: bool, content: bytes, is_text: bool, ts: float
    ) -> list[Record]:
        direction = "client" if from_client else "server"
        event_type, event = parse_frame(content, is_text)
        ts_utc = datetime.fromtimestamp(ts, UTC)  # `utc(ts)`, once per message
        session_id = self.opened.id
        if not isinstance(event, dict) or event_type in _ODD_TYPES:
            payload = self._odd_payload(content, event_type, event)
            return [
                EventRecord(session_id, seq, ts_utc, direction, event_type, len(content), payload)
            ]
        audio = self._strip(event_type, event)
        if self._may_hold_secret(event, content, audio):
            event = redact_value(event)
        if self.pii is not None:
            self.pii.redact(event_type, event)
        event_id, response_id, item_id = event_refs(event)
        error_type, error_code = (
            protocol.error_fields(event) if event_type in self.error_events else (None, None)
        )
        records: list[Record] = [
            EventRecord(
                session_id,
                seq,
                ts_utc,
                direction,
                event_type,
                len(content),
                None if self.record_mode == "metadata" else event,
                event_id,
                response_id,
                item_id,
                error_type,
                error_code,
            )
        ]
        if audio is not None:
            user_side, fmt = self._audio_side(from_client, event_type, response_id)
            if user_side:
                self.input_clock.append(base64_decoded_size(audio), fmt, ts)
            if self.record_mode == "full":
                records.append(
                    AudioRecord(
                        session_id,
                        seq,
                        ts_utc,
                        "client" if user_side else "server",
                        fmt.name,
                        fmt.sample_rate,
                        audio,
                        response_id,
                        item_id,
                    )
                )
        interpreted = self._interpret(from_client, event_type, event, ts, response_id)
        if interpreted:
            records.extend(interpreted)
        return records

    @staticmethod
    def _may_hold_secret(event: dict[str, Any], content: bytes, audio: str | None) -> bool:
        """Whether the event must go through `redact_value`. A flat event (the appends and deltas)
        is read as decoded; any other by its frame's bytes."""
        held = flat_event_holds_secret(event)
        if held is not None:
            return held
        # The audio is not stored, only its size: the rest of the frame is all that can hold a
        # secret, a few hundred bytes instead of kilobytes (escaped audio is simply not cut out).
        rest = content if audio is None else without_first(content, audio.encode(errors="ignore"))
        return might_hold_secret(rest)

    def _strip(self, event_type: str, event: dict[str, Any]) -> str | None:
        """`protocol.strip_payload`'s work, returning the event's own audio. The many appends and
        deltas take a short cut: their audio field is known (text deltas have none)."""
        if self.record_mode != "full":
            return protocol.strip_payload(event_type, event, True).stream
        if event_type in _TEXT_DELTAS and AUDIO_FIELD not in event:
            event.pop("obfuscation", None)  # all that the generic path would find to strip
            return None
        own = _OWN_AUDIO_FIELD.get(event_type)
        if own is None:
            return protocol.strip_payload(event_type, event, False).stream
        event.pop("obfuscation", None)
        audio = event.get(own)
        if not isinstance(audio, str):
            return None
        event[own] = protocol.base64_decoded_size(audio)
        return audio

    def unparsed(self, from_client: bool, content: bytes, ts: float) -> EventRecord:
        """The event row of a message `on_message` failed on: its seq, size and direction only."""
        seq = self.seq
        self.seq += 1
        return EventRecord(
            session_id=self.id,
            seq=seq,
            ts=utc(ts),
            direction="client" if from_client else "server",
            type=protocol.INVALID,
            size_bytes=len(content),
        )

    def close(
        self, ts: float, code: int | None, reason: str | None, closed_by: str | None
    ) -> SessionClosed:
        return SessionClosed(
            id=self.id,
            ended_at=utc(ts),
            close_code=code,
            close_reason=self._free_text(reason) if reason else reason,
            closed_by=closed_by,
        )

    def _free_text(self, text: str) -> str:
        text = redact_free_text(text)
        return text if self.pii is None else redact_pii(text)

    def closing(
        self, ts: float, code: int | None, reason: str | None, closed_by: str | None
    ) -> list[Record]:
        """The records of the connection's end: its `SessionClosed`, after anything left open."""
        return [self.close(ts, code, reason, closed_by)]

    def _odd_payload(self, content: bytes, event_type: str, decoded: Any) -> Any:
        """What is kept of a frame that is not a JSON object with a string `type`."""
        # Binary frames are kept as their size only, in every mode: the Realtime API sends none,
        # and bytes in an unknown encoding (UTF-16, compressed, …) cannot be searched for a key.
        if self.record_mode == "metadata" or event_type == protocol.BINARY:
            return None
        # Not an event: free text, so every shape a secret takes in text is looked for.
        if decoded is not None:
            if self.record_mode != "full":
                protocol.strip_nested_audio(decoded)
            kept = redact_value(decoded, redact_free_text)
            if self.pii is not None:
                redact_strings([kept])
            return kept
        text = redact_free_text(content.decode("utf-8", errors="replace"))
        return text if self.pii is None else redact_pii(text)

    def _audio_side(
        self, from_client: bool, event_type: str, response_id: str | None
    ) -> tuple[bool, protocol.AudioFormat]:
        """Whether audio in this event is the user's (else the assistant's), and its format."""
        return from_client, self._audio_format(from_client, response_id)

    def _audio_format(self, from_client: bool, response_id: str | None) -> protocol.AudioFormat:
        if from_client:
            return self.input_format
        timing = self.responses.get(response_id or "")
        if timing is not None and timing.output_format is not None:
            return timing.output_format
        return self.output_format

    def _interpret(
        self,
        from_client: bool,
        event_type: str,
        event: dict[str, Any],
        ts: float,
        response_id: str | None,
    ) -> list[Record]:
        if from_client:
            if event_type in protocol.SESSION_UPDATES:
                self._apply_session(event.get("session"))
            return []
        if event_type in _OUTPUT_DELTAS:
            self._mark_first_output(event_type, response_id, ts)
            return []
        if event_type in protocol.SESSION_STATE_EVENTS:
            return self._session_changed(event.get("session"))
        if event_type == protocol.SPEECH_STOPPED:
            end_ms = protocol.float_or_none(event.get("audio_end_ms"))
            self.pending_turn = (
                ts,
                None if end_ms is None else self.input_clock.relayed_at(end_ms),
            )
            return []
        if event_type == protocol.RESPONSE_CREATED and response_id is not None:
            return [self._response_created(event, response_id, ts)]
        if event_type == protocol.RESPONSE_DONE and response_id is not None:
            return [self._response_done(event, response_id, ts)]
        if event_type == protocol.RATE_LIMITS_UPDATED:
            return self._rate_limits(event, ts)
        if event_type == protocol.TRANSCRIPTION_COMPLETED:
            return [self._transcription(event, ts)]
        return []

    def _apply_session(self, session: Any) -> protocol.SessionConfig:
        config = protocol.session_config(session)
        self.input_format = config.input_format or self.input_format
        self.output_format = config.output_format or self.output_format
        self.transcription_model = config.transcription_model or self.transcription_model
        return config

    def _session_changed(self, session: Any) -> list[Record]:
        config = self._apply_session(session)
        for reported in (config.model, config.transcription_model):
            if reported is not None and len(self.reported_models) < MAX_REPORTED_MODELS:
                self.reported_models.add(reported)
        if config.model is not None:
            self.model = config.model
        if config.model is None and config.openai_session_id is None:
            return []
        return [
            SessionChanged(
                id=self.id, model=config.model, openai_session_id=config.openai_session_id
            )
        ]

    def _mark_first_output(self, event_type: str, response_id: str | None, ts: float) -> None:
        timing = self.responses.get(response_id or "")
        if timing is None:
            return
        if event_type in protocol.AUDIO_DELTAS:
            if timing.first_audio_ts is None:
                timing.first_audio_ts = ts
        elif timing.first_text_ts is None:
            timing.first_text_ts = ts

    def _response_created(
        self, event: dict[str, Any], response_id: str, ts: float
    ) -> ResponseCreated:
        response = event.get("response")
        speech_stopped_ts, speech_end_ts = self.pending_turn or (None, None)
        self.pending_turn = None
        self.responses[response_id] = ResponseTiming(
            created_ts=ts,
            output_format=protocol.response_output_format(response),
            speech_stopped_ts=speech_stopped_ts,
            speech_end_ts=speech_end_ts,
        )
        return ResponseCreated(
            session_id=self.id,
            response_id=response_id,
            created_at=utc(ts),
            status=protocol.response_outcome(response).status,
        )

    def _response_done(self, event: dict[str, Any], response_id: str, ts: float) -> ResponseDone:
        response = event.get("response")
        outcome = protocol.response_outcome(response)
        timing = self.responses.pop(response_id, None) or ResponseTiming(created_ts=None)
        usage = protocol.response_usage(
            response.get("usage") if isinstance(response, dict) else None
        )
        cost, estimated = response_cost(self.prices.lookup(self.model), usage)
        first_audio = timing.first_audio_ts
        return ResponseDone(
            session_id=self.id,
            response_id=response_id,
            done_at=utc(ts),
            status=outcome.status,
            status_reason=outcome.reason,
            usage=usage,
            error_type=outcome.error_type,
            error_code=outcome.error_code,
            cost_usd=cost,
            cost_estimated=estimated if cost is not None else None,
            time_to_first_audio_ms=ms_between(timing.created_ts, first_audio),
            time_to_first_text_ms=ms_between(timing.created_ts, timing.first_text_ts),
            turn_latency_ms=ms_between(timing.speech_stopped_ts, first_audio),
            voice_to_voice_ms=ms_between(timing.speech_end_ts, first_audio),
            created_at=None if timing.created_ts is None else utc(timing.created_ts),
        )

    def _rate_limits(self, event: dict[str, Any], ts: float) -> list[Record]:
        return [
            RateLimitRecord(
                session_id=self.id,
                ts=utc(ts),
                name=entry.name,
                limit_value=entry.limit,
                remaining=entry.remaining,
                reset_seconds=entry.reset_seconds,
            )
            for entry in protocol.rate_limit_entries(event)
        ]

    def _transcription(self, event: dict[str, Any], ts: float) -> TranscriptionRecord:
        _, _, item_id = protocol.event_refs(event)
        usage = protocol.transcription_usage(event.get("usage"))
        return TranscriptionRecord(
            session_id=self.id,
            ts=utc(ts),
            item_id=item_id,
            model=self.transcription_model,
            transcript=None if self.record_mode == "metadata" else protocol.transcript_of(event),
            cost_usd=transcription_cost(self.prices.lookup(self.transcription_model), usage),
            **usage,
        )
