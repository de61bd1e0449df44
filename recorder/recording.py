"""What the recorder does with each hand-over item: sessions opened, messages and raw frames
interpreted into records, closes, failed and unrecorded upgrades, calls, drop counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import protocol
from handover import wire
from handover.wire import Item
from protocol.pricing import PriceTable
from protocol.redact import redact_text
from recorder import observe
from recorder.call_observer import CallObserver, ObserverConfig
from recorder.calls import CallRecorder, is_call_record, resolved
from recorder.frames import FrameError, RawStream
from recorder.live_session import LiveSessionRecorder
from recorder.metrics import REOPENED_SESSION, UNKNOWN_SESSION, Metrics
from recorder.pii_redaction import PiiRedactor, redacted_properties
from recorder.session import SessionRecorder
from storage.records import EventRecord, Record, SessionOpened, UpgradeFailed
from storage.writer import Writer

logger = logging.getLogger(__name__)

# Distinct `path` labels of the unrecorded-upgrades counter (several relays name theirs).
MAX_UNRECORDED_PATHS = 50


@dataclass
class _Session:
    recorder: SessionRecorder
    property_labels: tuple[str, ...] = ()
    frames: RawStream | None = None  # a raw-relayed session: its frame parsers
    counted: bool = False  # in openai_realtime_sessions_total yet (once its model is known)


class Recording:
    """What one recorder process knows: live sessions of every relay, the metrics, the writer.
    Each session records as the relay's `--record` said when it opened (`SessionOpened`)."""

    def __init__(
        self,
        writer: Writer,
        metrics: Metrics,
        prices: PriceTable,
        proxy_id: str = "",
        redact_pii: bool = False,
    ) -> None:
        self.redact_pii = redact_pii
        self.writer = writer
        self.proxy_id = proxy_id or None
        self.metrics = metrics
        self.prices = prices
        self.sessions: dict[tuple[int, int], _Session] = {}
        self.relays_lost: dict[str, int] = {}  # drops reported by relays, by reason
        self.unrecorded_paths: set[str] = set()
        self.calls = CallRecorder(self.proxy_id, redact_pii)
        self._call_records = ThreadPoolExecutor(1, thread_name_prefix="rtrec-call-records")
        self._last_call_records: Future[None] | None = None
        self.observer: CallObserver | None = None
        metrics.watch(writer, self._active_by_model)

    def observe_calls(self, config: ObserverConfig) -> None:
        """`--observe-calls`: attach a sideband of our own to every call created or accepted."""
        self.observer = CallObserver(config, self.handle, self.metrics, self._call_ended)

    def handle(self, relay: int, item: Item) -> None:
        """Apply one item from relay number `relay`; a bad item is logged, never fatal."""
        try:
            if item.kind == wire.RAW:
                self._raw(relay, item)
            elif item.kind == wire.MESSAGE:
                self._message(relay, item)
            elif item.kind == wire.OPEN:
                self._open(relay, item)
            elif item.kind == wire.CLOSE:
                self._close(relay, item)
            elif item.kind == wire.DROPPED:
                self._dropped(relay, item)
            elif item.kind == wire.UPGRADE_FAILED:
                self._upgrade_failed(item)
            elif item.kind == wire.UNRECORDED:
                self._unrecorded(item)
            elif item.kind == wire.CALL:
                self._call(item)
        except Exception:
            logger.exception("could not apply a hand-over item of kind %d", item.kind)

    def mark(self, committed: Callable[[], None], soon: bool = False) -> None:
        """Call `committed` once every record submitted so far is committed; behind the call
        records still on their thread, if any. `soon`: a relay waits for it (`Writer.mark`)."""
        pending = self._last_call_records
        if pending is not None and not pending.done():
            self._last_call_records = self._call_records.submit(self.writer.mark, committed, soon)
        else:
            self.writer.mark(committed, soon)

    def relay_gone(self, relay: int) -> None:
        """A relay disconnected without closing its sessions: it crashed or was killed."""
        now = time.time()
        for key in [key for key in self.sessions if key[0] == relay]:
            session = self.sessions.pop(key).recorder
            self._submit(session.closing(now, None, "relay connection lost", None))
            logger.warning("session %s closed: its relay went away", session.id)

    def close_all(self, reason: str) -> None:
        self._call_records.shutdown(wait=True)  # before the writer closes: nothing is lost
        now = time.time()
        for session in self.sessions.values():
            self._submit(session.recorder.closing(now, None, reason, None))
        self.sessions.clear()

    def _open(self, relay: int, item: Item) -> None:
        key = (relay, item.session)
        if key in self.sessions:  # told again: the first open stands
            logger.warning("session %d of relay %d opened again; kept as first opened", *key)
            self.metrics.handover_anomalies.labels(kind=REOPENED_SESSION).inc()
            return
        fields = item.fields()
        rate_limit_key = str(fields.pop("rate_limit_key", "none"))
        extensions, raw = fields.pop("extensions", None), fields.pop("raw", False)
        fields["started_at"] = datetime.fromtimestamp(float(fields["started_at"]), UTC)
        fields["properties"] = tuple(
            (str(name), str(value)) for name, value in fields.get("properties", ())
        )
        if self.redact_pii:
            fields["properties"] = redacted_properties(fields["properties"])
        if fields.get("call_id"):
            # A sideband's URL names no model: the call's own (create or accept) prices it.
            fields["model"] = fields.get("model") or self.calls.model_of(fields["call_id"])
            fields.setdefault("call_role", "sideband")  # the application's, through the relay
        opened = SessionOpened(**fields, proxy_id=self.proxy_id)
        kind = LiveSessionRecorder if opened.api == "live" else SessionRecorder
        session = kind(
            opened,
            record_mode=opened.record_mode,  # the relay's, as the session opened
            prices=self.prices,
            rate_limit_key=rate_limit_key,
            pii=PiiRedactor() if self.redact_pii else None,
        )
        if opened.call_id and isinstance(session, LiveSessionRecorder):
            session.billed = self.calls.billed_of(opened.call_id)  # a call's seconds count once
        labels = self.metrics.property_label_values(dict(opened.properties))
        frames = RawStream(str(extensions) if extensions else None) if raw else None
        self.sessions[key] = entry = _Session(session, labels, frames)
        self._submit([opened])
        if opened.model is not None:  # a GPT-Live model arrives in the client's first frame
            self._count_session(entry)

    def _count_session(self, entry: _Session) -> None:
        """Count the session once, under the model it runs: Grafana's `$model` variable then
        offers no `unknown` for the GPT-Live sessions whose model came after the upgrade."""
        entry.counted = True
        session = entry.recorder
        observe.session_opened(self.metrics, session.model, self.prices, session.opened.api)

    def _entry(self, relay: int, item: Item) -> _Session | None:
        entry = self.sessions.get((relay, item.session))
        if entry is None:
            logger.warning("message for unknown session %d of relay %d", item.session, relay)
            self.metrics.handover_anomalies.labels(kind=UNKNOWN_SESSION).inc()
        return entry

    def _message(self, relay: int, item: Item) -> None:
        entry = self._entry(relay, item)
        if entry is not None:
            # The relay numbers messages: a drop leaves a visible gap.
            self._record(
                entry, item.from_client, item.body, item.is_text, item.ts, item.seq, item.flags
            )

    def _raw(self, relay: int, item: Item) -> None:
        """A chunk of a raw-relayed stream: parsed here into the messages it completes."""
        entry = self._entry(relay, item)
        if entry is None or entry.frames is None:
            return
        from_client, ts, seq, flags = item.from_client, item.ts, item.seq, item.flags
        direction = entry.frames.direction(from_client)
        if flags & wire.RESYNC:  # bytes before it were never handed over here
            direction.resync()
        failed_before = direction.failed
        try:
            messages = direction.feed(item.body)
        except FrameError as exc:
            side = "client" if from_client else "server"
            if not failed_before:  # once per stream, not per chunk
                logger.warning("cannot parse the %s's frames: %s; recorded as invalid", side, exc)
            observe.parse_failed(self.metrics, side)
            entry.recorder.seq = seq
            records = [entry.recorder.unparsed(from_client, item.body, ts)]
            self.writer.submit(records, bool(flags & wire.REPLAY))
            return
        # The relay numbered the messages this chunk ends, both directions in one sequence.
        for is_text, content in messages:
            self._record(entry, from_client, content, is_text, ts, seq, flags)
            seq += 1

    def _record(
        self,
        entry: _Session,
        from_client: bool,
        body: bytes,
        is_text: bool,
        ts: float,
        seq: int,
        flags: int = 0,
    ) -> None:
        """One whole message, as relayed: its records, then the metrics from them. `flags`
        `REPLAY`: sent again by the relay, its records may be stored already."""
        session = entry.recorder
        direction = "client" if from_client else "server"
        session.seq = seq
        try:
            records: Sequence[Record] = session.on_message(from_client, body, is_text, ts)
        except Exception:
            logger.exception("could not interpret a %s message; it was relayed as is", direction)
            observe.parse_failed(self.metrics, direction)
            records = [session.unparsed(from_client, body, ts)]
        opened = session.opened
        if opened.call_id is not None:  # one call's usage counts once, whoever saw it
            records = self.calls.of_call(opened.call_id, records)
            replayed = bool(flags & wire.REPLAY)
            self.writer.submit([r for r in records if not is_call_record(r)], replayed)
            self._submit_call_records([r for r in records if is_call_record(r)])
        else:
            self.writer.submit(records, bool(flags & wire.REPLAY))
        if not entry.counted and session.model is not None:
            self._count_session(entry)
        metrics = self.metrics
        try:
            observe.observe(
                metrics,
                session.model,
                session.rate_limit_key,
                records,
                self.prices,
                session.reported_models,
                entry.property_labels,
                opened.api,
            )
            if isinstance(session, LiveSessionRecorder):
                observe.live_billing(metrics, session, entry.property_labels)
        except Exception:
            logger.exception("could not update metrics for a %s message", direction)
        first = records[0]
        event_type = first.type if isinstance(first, EventRecord) else protocol.INVALID
        metrics.relayed.add(direction, event_type, len(body), opened.api)

    def _close(self, relay: int, item: Item) -> None:
        entry = self.sessions.pop((relay, item.session), None)
        if entry is None:
            return
        session = entry.recorder
        if not entry.counted:  # it closed before its model was known
            self._count_session(entry)
        fields = item.fields()
        self._submit(
            session.closing(item.ts, fields.get("code"), fields.get("reason"), fields.get("by"))
        )
        started = session.opened.started_at.timestamp()
        observe.session_closed(
            self.metrics, session.metric_model, session.opened.api, item.ts - started
        )

    def _upgrade_failed(self, item: Item) -> None:
        fields = item.fields()
        status = int(fields.get("status", 0))
        observe.upgrade_failed(self.metrics, status)
        reason = fields.get("reason")
        failed = UpgradeFailed(
            ts=datetime.fromtimestamp(item.ts, UTC),
            status=status,
            path=str(fields.get("path", "")),
            reason=redact_text(str(reason)) if reason else None,
            upstream=fields.get("upstream"),
            client_addr=fields.get("client_addr"),
            proxy_id=self.proxy_id,
        )
        self._submit([failed])

    def _unrecorded(self, item: Item) -> None:
        """A WebSocket the relay relayed without recording: counted by its bounded path shape."""
        path = str(item.fields().get("path", ""))[:80]
        if path not in self.unrecorded_paths:
            if len(self.unrecorded_paths) >= MAX_UNRECORDED_PATHS:
                path = "other"
            else:
                self.unrecorded_paths.add(path)
        observe.unrecorded_upgrade(self.metrics, path)

    def _call(self, item: Item) -> None:
        step = self.calls.handle(item.fields())
        self._submit_call_records(step.records)
        if step.metric_labels is not None:
            api, transport, outcome = step.metric_labels
            self.metrics.calls.labels(api=api, transport=transport, outcome=outcome).inc()
        if self.observer is not None and step.call is not None:
            if step.observe:
                self.observer.attach(step.call)
            elif step.ended:
                self.observer.detach(step.call.call_id)

    def _call_ended(self, call_id: str, ts: float, reason: str) -> None:
        self._submit_call_records(self.calls.ended(call_id, ts, reason))

    def _submit_call_records(self, records: Sequence[Record]) -> None:
        """Call records go through one thread in order: reading an SDP must not hold up the
        event loop (observers attach meanwhile), nor a call's update overtake its insert."""
        if records:
            self._last_call_records = self._call_records.submit(self._write_call_records, records)

    def _write_call_records(self, records: Sequence[Record]) -> None:
        try:
            self._submit(resolved(records))
        except Exception:  # a thread's exception would otherwise vanish
            logger.exception("could not record %d call record(s)", len(records))

    def _dropped(self, relay: int, item: Item) -> None:
        """Messages the relay relayed but could not hand over: counted as relayed and dropped.
        With `unless_stored`, only those of the listed seqs whose event is not stored."""
        fields = item.fields()
        reason = str(fields.get("reason", "handover_full"))
        unless_stored = fields.get("unless_stored")
        if unless_stored is not None:
            seqs = [seq for first, count in unless_stored for seq in range(first, first + count)]
            self.writer.count_unless_stored(str(fields.get("session_id")), seqs, reason)
            return
        messages = {direction: int(fields.get(direction, 0)) for direction in ("client", "server")}
        size_bytes = {direction: int(fields.get(f"{direction}_bytes", 0)) for direction in messages}
        observe.relay_dropped(self.metrics, reason, messages, size_bytes)
        count = sum(messages.values())
        self.relays_lost[reason] = self.relays_lost.get(reason, 0) + count

    def _submit(self, records: Sequence[Record]) -> None:
        self.writer.submit(records)

    def _active_by_model(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for entry in list(self.sessions.values()):
            key = (entry.recorder.metric_model, entry.recorder.opened.api)
            counts[key] = counts.get(key, 0) + 1
        return counts
