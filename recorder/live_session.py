"""Turns one GPT-Live connection's messages into storage records (no mitmproxy, no I/O).

Shares the event rows, redaction and audio handling of `SessionRecorder`; what differs is
GPT-Live's protocol (`protocol/live.py`): the model in `session.start`, per-second usage,
delegated token usage and turns derived from transcripts and output audio (docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import protocol
from protocol import live
from protocol.pricing import response_cost, seconds_cost
from recorder.session import MAX_REPORTED_MODELS, SessionRecorder, ms_between, utc
from storage.records import (
    Record,
    ResponseCreated,
    ResponseDone,
    SessionChanged,
    SessionUsageChanged,
)

TURN_PREFIX = "live-turn-"


@dataclass
class LiveTurn:
    """One assistant turn: output audio from its first delta on, with its latencies."""

    response_id: str
    first_audio_ts: float
    last_audio_ts: float
    time_to_first_audio_ms: float | None
    voice_to_voice_ms: float | None


@dataclass
class UserSpeech:
    """The newest user transcript delta since the last turn began."""

    ts: float
    end_ms: float | None


@dataclass
class BilledSoFar:
    """Cumulative seconds and cost already counted in the metrics (usage is never summed)."""

    active_seconds: float = 0.0
    paused_seconds: float = 0.0
    cost_usd: float = 0.0


@dataclass
class LiveSessionRecorder(SessionRecorder):
    """State of one GPT-Live WebSocket: its audio format, turns, usage and delegations."""

    socket_kind: str = live.PRIMARY
    turns: int = 0
    turn: LiveTurn | None = None
    user_speech: UserSpeech | None = None
    billed: BilledSoFar = field(default_factory=BilledSoFar)
    # Increments for the metrics since `Recording` last took them (`take_billing`).
    billed_increments: dict[str, float] = field(default_factory=dict)
    context_ratios: list[float] = field(default_factory=list)
    error_events: ClassVar[frozenset[str]] = live.ERROR_EVENTS

    def __post_init__(self) -> None:
        super().__post_init__()
        self.socket_kind = live.socket_kind(self.opened.path) or live.PRIMARY
        if self.socket_kind == live.SIDEBAND:
            self.input_format = self.output_format = live.SIDEBAND_FORMAT

    def closing(
        self, ts: float, code: int | None, reason: str | None, closed_by: str | None
    ) -> list[Record]:
        return [*self._end_turn(), self.close(ts, code, reason, closed_by)]

    def take_billing(self) -> tuple[dict[str, float], list[float]]:
        """Billable-second and cost increments, and context ratios, not yet in the metrics."""
        taken = self.billed_increments, self.context_ratios
        self.billed_increments, self.context_ratios = {}, []
        return taken

    def _audio_side(
        self, from_client: bool, event_type: str, response_id: str | None
    ) -> tuple[bool, protocol.AudioFormat]:
        # The sideband's reflected `session.input_audio.append` is the user's audio too.
        user = from_client or event_type == live.INPUT_AUDIO_APPEND
        if event_type == live.FIXTURE_PLAY:
            return False, live.SIDEBAND_FORMAT  # fixture audio is PCM16 24 kHz in any session
        return user, self.input_format if user else self.output_format

    def _interpret(
        self,
        from_client: bool,
        event_type: str,
        event: dict[str, Any],
        ts: float,
        response_id: str | None,
    ) -> list[Record]:
        if from_client:
            return self._session_start(event) if event_type == live.SESSION_START else []
        if event_type == live.OUTPUT_AUDIO_DELTA:
            return self._output_audio(ts)
        if event_type == live.INPUT_TRANSCRIPT_DELTA:
            return self._user_speech(event, ts)
        if event_type in live.SESSION_STATE_EVENTS:
            return self._session_state(event_type, event)
        if event_type == live.USAGE_UPDATED:
            return self._usage(event, final=False)
        if event_type == live.RESPONSE_EVENT:
            return self._delegated(live.response_event_usage(event), ts)
        if event_type == live.DECISION_EVENT:
            return self._delegated(live.decision_event_usage(event), ts)
        return []

    def _session_start(self, event: dict[str, Any]) -> list[Record]:
        """The client's `session.start`: the model (a fork inherits it) and the audio format."""
        started = live.session_of(event)
        if self.socket_kind != live.SIDEBAND and started.audio_format is not None:
            self.input_format = self.output_format = started.audio_format
        if started.model is None:
            return []
        self.model = started.model
        return [SessionChanged(id=self.id, model=started.model)]

    def _session_state(self, event_type: str, event: dict[str, Any]) -> list[Record]:
        """`session.started` / `updated` / `closed`: the server's model, id and format."""
        resource = live.session_of(event)
        if self.socket_kind != live.SIDEBAND and resource.audio_format is not None:
            self.input_format = self.output_format = resource.audio_format
        if resource.model is not None and len(self.reported_models) < MAX_REPORTED_MODELS:
            self.reported_models.add(resource.model)
        self.model = resource.model or self.model
        records: list[Record] = []
        if resource.model is not None or resource.openai_session_id is not None:
            records.append(
                SessionChanged(
                    id=self.id, model=resource.model, openai_session_id=resource.openai_session_id
                )
            )
        if event_type == live.SESSION_CLOSED:
            records.extend(self._end_turn())
            records.extend(self._usage(event, final=True))
        return records

    def _usage(self, event: dict[str, Any], final: bool) -> list[Record]:
        usage = live.session_usage(event)
        ratio = live.context_usage_ratio(event)
        if ratio is not None:
            self.context_ratios.append(ratio)
        cost = None
        if usage is not None:
            price = self.prices.lookup(self.model)
            cost = seconds_cost(price, usage.active_seconds, usage.paused_seconds)
            self._count_billing(usage, cost)
        return [
            SessionUsageChanged(
                id=self.id,
                billable_seconds=usage.seconds if usage else None,
                active_seconds=usage.active_seconds if usage else None,
                paused_seconds=usage.paused_seconds if usage else None,
                context_usage_ratio=ratio,
                seconds_cost_usd=cost,
                usage_final=True if final and usage is not None else None,
                end_reason=live.close_reason(event) if final else None,
            )
        ]

    def _count_billing(self, usage: live.SessionUsage, cost: float | None) -> None:
        """Metric increments between cumulative values; a value that went down adds nothing."""
        billed, increments = self.billed, self.billed_increments
        for kind, seconds in (("active", usage.active_seconds), ("paused", usage.paused_seconds)):
            before = getattr(billed, f"{kind}_seconds")
            if seconds > before:
                increments[kind] = increments.get(kind, 0.0) + seconds - before
                setattr(billed, f"{kind}_seconds", seconds)
        if cost is not None and cost > billed.cost_usd:
            increments["cost_usd"] = increments.get("cost_usd", 0.0) + cost - billed.cost_usd
            billed.cost_usd = cost

    def _delegated(self, delegated: live.DelegatedUsage | None, ts: float) -> list[Record]:
        """A `responses` row for delegated Responses or Decisions work, priced by its model."""
        if delegated is None:
            return []
        cost, estimated = response_cost(self.prices.lookup(delegated.model), delegated.usage)
        return [
            ResponseDone(
                session_id=self.id,
                response_id=delegated.response_id,
                done_at=utc(ts),
                status=delegated.status,
                usage=delegated.usage,
                cost_usd=cost,
                cost_estimated=estimated if cost is not None else None,
                model=delegated.model,
                delegation_id=delegated.delegation_id,
            )
        ]

    def _user_speech(self, event: dict[str, Any], ts: float) -> list[Record]:
        """User speech ends the assistant's turn (an answer, or a barge-in)."""
        delta = live.transcript_delta(event)
        self.user_speech = UserSpeech(ts=ts, end_ms=delta.end_ms if delta else None)
        return self._end_turn()

    def _output_audio(self, ts: float) -> list[Record]:
        if self.turn is not None:
            self.turn.last_audio_ts = ts
            return []
        self.turns += 1
        speech, self.user_speech = self.user_speech, None
        heard_at = None
        if speech is not None and speech.end_ms is not None:
            heard_at = self.input_clock.relayed_at(speech.end_ms)
        self.turn = LiveTurn(
            response_id=f"{TURN_PREFIX}{self.turns}",
            first_audio_ts=ts,
            last_audio_ts=ts,
            time_to_first_audio_ms=ms_between(speech.ts if speech else None, ts),
            voice_to_voice_ms=ms_between(heard_at, ts),
        )
        return [
            ResponseCreated(
                session_id=self.id,
                response_id=self.turn.response_id,
                created_at=utc(ts),
                status="in_progress",
            )
        ]

    def _end_turn(self) -> list[Record]:
        turn, self.turn = self.turn, None
        if turn is None:
            return []
        return [
            ResponseDone(
                session_id=self.id,
                response_id=turn.response_id,
                done_at=utc(turn.last_audio_ts),
                status="completed",
                time_to_first_audio_ms=turn.time_to_first_audio_ms,
                voice_to_voice_ms=turn.voice_to_voice_ms,
                created_at=utc(turn.first_audio_ts),
            )
        ]
