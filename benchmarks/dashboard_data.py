"""Synthetic recordings for the dashboard benchmark: sessions shaped like real Realtime traffic.

Voice, text and tool turns, barge-ins, cancels, failures, errors, rate limits, transcriptions and
(for a few sessions) audio, written with executemany through the models' Core tables.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from handover.ids import uuid7
from storage.browse import TOKEN_COLUMNS
from storage.models import (
    AudioChunk,
    Event,
    RateLimit,
    RealtimeSession,
    Response,
    Transcription,
    table,
)

MODELS = [
    ("gpt-realtime", "ga", 0.6),
    ("gpt-realtime-mini", "ga", 0.25),
    ("gpt-4o-realtime-preview-2025-06-03", "beta", 0.1),
    ("gpt-realtime-2025-08-28", "ga", 0.05),
]
PRICES = {"gpt-realtime": (4.0, 32.0, 16.0, 64.0), "gpt-realtime-mini": (0.6, 10.0, 2.4, 20.0)}
PHRASES = (
    "hello there",
    "I would like a refund",
    "where is my order",
    "what is the weather tomorrow",
    "book a flight to Paris",
    "reset my password please",
    "cancel the meeting",
    "play some music",
    "schedule a doctor appointment",
    "thanks a lot",
)
CHUNK_BYTES = 4800  # 100 ms of pcm16 at 24 kHz
AUDIO = bytes(range(256)) * (CHUNK_BYTES // 256) + bytes(CHUNK_BYTES % 256)


def _sentence(rng: random.Random, phrases: int) -> str:
    return ", ".join(rng.choice(PHRASES) for _ in range(phrases)).capitalize() + "."


@dataclass
class SessionWriter:
    """Builds one session's rows; `turn()` adds one user turn and the response to it."""

    rng: random.Random
    session: dict[str, Any]
    full_audio: bool
    ts: datetime
    seq: int = 0
    context_tokens: int = 150
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def session_id(self) -> str:
        return str(self.session["id"])

    @property
    def beta(self) -> bool:
        return bool(self.session["api"] == "beta")

    def _add(self, kind: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(kind, []).append(row)

    def event(self, direction: str, kind: str, payload: dict[str, Any], **refs: Any) -> None:
        self.ts += timedelta(milliseconds=self.rng.uniform(2, 60))
        size = refs.pop("size", 120 + 8 * len(payload))
        error = payload.get("error", {}) if kind == "error" else {}
        self._add(
            "events",
            {
                "session_id": self.session_id,
                "seq": self.seq,
                "ts": self.ts,
                "direction": direction,
                "type": kind,
                "event_id": f"event_{self.seq}",
                "response_id": refs.get("response_id"),
                "item_id": refs.get("item_id"),
                "size_bytes": size,
                "payload": {"type": kind, **payload},
                "error_type": error.get("type"),
                "error_code": error.get("code"),
            },
        )
        self.seq += 1

    def audio(
        self, direction: str, response_id: str | None = None, item_id: str | None = None
    ) -> None:
        kind = (
            "input_audio_buffer.append"
            if direction == "client"
            else ("response.audio.delta" if self.beta else "response.output_audio.delta")
        )
        field_name = "audio" if direction == "client" else "delta"
        if self.full_audio:
            self._add(
                "audio_chunks",
                {
                    "session_id": self.session_id,
                    "seq": self.seq,
                    "ts": self.ts,
                    "direction": direction,
                    "response_id": response_id,
                    "item_id": item_id,
                    "audio_format": "pcm16",
                    "sample_rate": 24000,
                    "data": AUDIO,
                },
            )
        refs = {"response_id": response_id, "item_id": item_id, "size": 6550}
        self.event(direction, kind, {field_name: CHUNK_BYTES}, **refs)

    def user_voice(self) -> tuple[str, str]:
        item_id = f"item_u{self.seq}"
        for _ in range(self.rng.randint(10, 40)):
            self.audio("client")
        self.event("server", "input_audio_buffer.speech_started", {"item_id": item_id})
        self.event("server", "input_audio_buffer.speech_stopped", {"item_id": item_id})
        self.event("server", "input_audio_buffer.committed", {"item_id": item_id}, item_id=item_id)
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio"}],
        }
        self.event("server", "conversation.item.added", {"item": item}, item_id=item_id)
        transcript = _sentence(self.rng, self.rng.randint(1, 4))
        for part in transcript.split(" ")[:3]:
            delta = {"item_id": item_id, "delta": part}
            self.event("server", "conversation.item.input_audio_transcription.delta", delta)
        done = {"item_id": item_id, "transcript": transcript}
        kind = "conversation.item.input_audio_transcription.completed"
        self.event("server", kind, done, item_id=item_id)
        self._add(
            "transcriptions",
            {
                "session_id": self.session_id,
                "ts": self.ts,
                "item_id": item_id,
                "model": "gpt-4o-mini-transcribe",
                "transcript": transcript,
                "usage_type": "tokens",
                "input_tokens": 30,
                "output_tokens": 12,
                "total_tokens": 42,
                "input_audio_tokens": 30,
                "input_text_tokens": 0,
                "seconds": None,
                "cost_usd": 0.0001,
            },
        )
        return item_id, transcript

    def user_text(self) -> str:
        text = _sentence(self.rng, self.rng.randint(1, 3))
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        self.event("client", "conversation.item.create", {"item": item})
        item_id = f"item_t{self.seq}"
        added = {"item": {**item, "id": item_id}}
        self.event("server", "conversation.item.added", added, item_id=item_id)
        return text

    def _outcome(self, voice: bool) -> tuple[str, str | None]:
        roll = self.rng.random()
        if voice and roll < 0.06:
            return "cancelled", "turn_detected"
        if roll < 0.08:
            return "cancelled", "client_cancelled"
        return ("failed", None) if roll < 0.09 else ("completed", None)

    def _stream(self, voice: bool, words: list[str], refs: dict[str, str]) -> float | None:
        """Text or transcript deltas (with audio for voice) then the done event; first audio ms."""
        started, first_audio = self.ts, None
        for word in words:
            self.event("server", self._name(voice, "delta"), {"delta": word}, **refs)
            if voice:
                self.audio("server", refs["response_id"], refs["item_id"])
                if first_audio is None:
                    first_audio = (self.ts - started).total_seconds() * 1000
        kind = "transcript" if voice else "text"
        self.event("server", self._name(voice, "done"), {kind: " ".join(words)}, **refs)
        return first_audio

    def response(self, voice: bool, tool: bool) -> None:
        rid, item_id = f"resp_{self.seq}", f"item_a{self.seq}"
        self.event("client", "response.create", {})
        created_at = self.ts
        self.event("server", "response.created", {"response": {"id": rid}}, response_id=rid)
        refs = {"response_id": rid, "item_id": item_id}
        self.event("server", "response.output_item.added", {"item": {"id": item_id}}, **refs)
        status, reason = self._outcome(voice)
        words = _sentence(self.rng, self.rng.randint(2, 8)).split(" ")
        if status == "cancelled":
            words = words[: max(1, len(words) // 3)]
        first_audio = None
        if status != "failed":
            first_audio = self._stream(voice, words, refs)
            kind = "transcript" if voice else "text"
            content = [{"type": "output_audio" if voice else "output_text", kind: " ".join(words)}]
            item = {"id": item_id, "type": "message", "role": "assistant", "content": content}
            if tool:
                item = {"id": item_id, "type": "function_call", "name": "lookup_order"}
                item |= {"call_id": f"call_{self.seq}", "arguments": '{"order": 42}'}
            self.event("server", "response.output_item.done", {"item": item}, **refs)
        self._response_done(rid, created_at, (status, reason), voice, len(words), first_audio)
        if tool and status == "completed":
            output = {"type": "function_call_output", "call_id": f"call_{self.seq}"}
            output["output"] = '{"status": "shipped"}'
            self.event("client", "conversation.item.create", {"item": output})

    def _name(self, voice: bool, suffix: str) -> str:
        stream = (
            ("audio_transcript" if voice else "text")
            if self.beta
            else ("output_audio_transcript" if voice else "output_text")
        )
        return f"response.{stream}.{suffix}"

    def _response_done(
        self,
        rid: str,
        created_at: datetime,
        outcome: tuple[str, str | None],
        voice: bool,
        words: int,
        first_audio: float | None,
    ) -> None:
        status, reason = outcome
        error = {"type": "tokens", "code": "rate_limit_exceeded"} if status == "failed" else None
        details = {"reason": reason} if reason else ({"error": error} if error else None)
        payload = {"response": {"id": rid, "status": status, "status_details": details}}
        self.event("server", "response.done", payload, response_id=rid, size=900)
        self.context_tokens += self.rng.randint(40, 400)
        usage = self._usage(voice, words) if status != "failed" else {}
        cost = self._cost(usage)
        row = {"session_id": self.session_id, "response_id": rid, "created_at": created_at}
        row |= {"done_at": self.ts, "status": status, "status_reason": reason}
        row |= {"error_type": error and error["type"], "error_code": error and error["code"]}
        row |= {"cost_usd": cost, "cost_estimated": False if cost is not None else None}
        row |= {"time_to_first_audio_ms": first_audio, "time_to_first_text_ms": None}
        if status != "failed":
            row["time_to_first_text_ms"] = self.rng.uniform(150, 900)
        self._add("responses", row | {c: usage.get(c) for c in TOKEN_COLUMNS})
        self._rate_limits()

    def _rate_limits(self) -> None:
        for name, limit in (("requests", 5000), ("tokens", 40000)):
            row = {"session_id": self.session_id, "ts": self.ts, "name": name}
            row |= {"limit_value": limit, "remaining": self.rng.randint(limit // 20, limit)}
            self._add("rate_limits", row | {"reset_seconds": self.rng.uniform(0.05, 60)})
        self.event("server", "rate_limits.updated", {"rate_limits": []}, size=240)

    def _usage(self, voice: bool, words: int) -> dict[str, int]:
        audio_in = self.context_tokens // 3 if voice else 0
        text_in = self.context_tokens - audio_in
        cached_text = (text_in // 64) * 32
        cached_audio = (audio_in // 64) * 32
        out_text, out_audio = words * 2, words * 12 if voice else 0
        return {
            "input_tokens": text_in + audio_in,
            "output_tokens": out_text + out_audio,
            "total_tokens": text_in + audio_in + out_text + out_audio,
            "input_text_tokens": text_in,
            "input_audio_tokens": audio_in,
            "input_image_tokens": 0,
            "cached_tokens": cached_text + cached_audio,
            "cached_text_tokens": cached_text,
            "cached_audio_tokens": cached_audio,
            "cached_image_tokens": 0,
            "output_text_tokens": out_text,
            "output_audio_tokens": out_audio,
        }

    def _cost(self, usage: dict[str, int]) -> float | None:
        price = PRICES.get(str(self.session["model"]).removesuffix("-2025-08-28"))
        if price is None or not usage:
            return None
        text_in, audio_in, text_out, audio_out = price
        return (
            (usage["input_text_tokens"] - usage["cached_text_tokens"]) * text_in
            + (usage["input_audio_tokens"] - usage["cached_audio_tokens"]) * audio_in
            + (usage["cached_tokens"]) * 0.4
            + usage["output_text_tokens"] * text_out
            + usage["output_audio_tokens"] * audio_out
        ) / 1e6

    def error(self) -> None:
        code = self.rng.choice(
            ["invalid_value", "response_cancel_not_active", "cannot_update_voice"]
        )
        error = {"type": "invalid_request_error", "code": code, "message": f"Bad request: {code}"}
        self.event("server", "error", {"error": error})


TABLES = {
    "events": table(Event),
    "responses": table(Response),
    "rate_limits": table(RateLimit),
    "transcriptions": table(Transcription),
    "audio_chunks": table(AudioChunk),
}


def session_row(rng: random.Random, started_at: datetime, full_audio: bool) -> dict[str, Any]:
    model, api, _ = rng.choices(MODELS, weights=[w for *_, w in MODELS])[0]
    return {
        "id": uuid7(int(started_at.timestamp() * 1000)),
        "started_at": started_at,
        "ended_at": None,
        "model": model,
        "api": api,
        "path": f"/v1/realtime?model={model}",
        "upstream": "https://api.openai.com",
        "client_addr": "10.0.0.7:51234",
        "openai_session_id": f"sess_{rng.getrandbits(40):x}",
        "close_code": None,
        "close_reason": None,
        "closed_by": None,
        "key_fingerprint": "3fa1c2d9",
        "record_mode": "full" if full_audio else "text",
    }


def make_session(
    rng: random.Random, started_at: datetime, budget: int, live: bool
) -> SessionWriter:
    """One session of about `budget` events: setup, turns until the budget is spent, close."""
    full_audio = rng.random() < 0.02
    session = session_row(rng, started_at, full_audio)
    writer = SessionWriter(rng, session, full_audio, started_at)
    created = {"session": {"model": session["model"]}}
    writer.event("server", "session.created", created, size=1400)
    writer.event("client", "session.update", {"session": {"instructions": "Be brief."}})
    writer.event("server", "session.updated", created, size=1400)
    voice_session = rng.random() < 0.75
    while writer.seq < budget:
        if voice_session and rng.random() < 0.85:
            writer.user_voice()
            writer.response(voice=True, tool=rng.random() < 0.05)
        else:
            writer.user_text()
            writer.response(voice=voice_session, tool=rng.random() < 0.08)
        if rng.random() < 0.02:
            writer.error()
    if not live:
        code = rng.choices([1000, 1005, 1006, 4000], weights=[90, 5, 4, 1])[0]
        session |= {"ended_at": writer.ts + timedelta(seconds=1), "close_code": code}
        session["closed_by"] = "client" if code in (1000, 1005) else "server"
    return writer


def insert_rows(connection: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    for name, batch in rows.items():
        if batch:
            connection.execute(insert(TABLES[name]), batch)
            batch.clear()


def generate(connection: Connection, sessions: int, events: int, seed: int = 7) -> None:
    """`sessions` sessions holding about `events` events, spread over the last 30 days."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    weights = [rng.lognormvariate(0, 0.8) for _ in range(sessions)]
    # A session overshoots its budget by half a turn (~32 events) on average.
    scale = (events - 32 * sessions) / sum(weights)
    starts = sorted(now - timedelta(seconds=rng.uniform(600, 30 * 86400)) for _ in range(sessions))
    pending: dict[str, list[dict[str, Any]]] = {}
    session_rows: list[dict[str, Any]] = []
    for index, (start, weight) in enumerate(zip(starts, weights, strict=True)):
        live = index >= sessions - 15
        if live:
            start = now - timedelta(seconds=rng.uniform(5, 300))
        writer = make_session(rng, start, max(8, int(weight * scale)), live)
        session_rows.append(writer.session)
        for name, batch in writer.rows.items():
            pending.setdefault(name, []).extend(batch)
        if len(pending.get("events", ())) > 200_000:
            connection.execute(insert(table(RealtimeSession)), session_rows)
            session_rows.clear()
            insert_rows(connection, pending)
    if session_rows:
        connection.execute(insert(table(RealtimeSession)), session_rows)
    insert_rows(connection, pending)
