"""Turns the call-control requests the relay handed over (`CALL` items) into call records.

Per call it keeps what later requests and sidebands need: its API and transport, where its
sideband is, whether it ended, which responses were already counted for cost (a call watched by
two sidebands reports each response twice) and whether any audio of it was seen.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handover.ids import uuid7
from protocol import calls
from protocol.pii import redact_pii
from protocol.redact import key_fingerprint, redact_text, redact_url, redact_value
from recorder.call_usage import CallUsage
from recorder.live_session import BilledSoFar
from recorder.pii_redaction import redact_strings
from recorder.session import utc
from storage.records import (
    AudioRecord,
    CallChanged,
    CallEventRecord,
    CallSeen,
    Record,
)

# Bounded: ephemeral keys minted and never used must not grow the process forever.
MAX_SECRETS = 10_000
MAX_CALLS = 10_000
# Calls rtrec can see: the first decisive step of each (metric `outcome`).
ANSWERED, REJECTED, FAILED = "answered", "rejected", "failed"
_EVENT_KIND = {
    calls.CREATE: "created",
    calls.ACCEPT: "accepted",
    calls.REJECT: "rejected",
    calls.REFER: "referred",
    calls.HANGUP: "hung_up",
}
# The ICE password is a credential of the media session; everything else of an SDP is not.
_ICE_PWD = re.compile(r"^(a=ice-pwd:)[^\r\n]*", re.MULTILINE)


@dataclass
class CallState:
    """What the recorder process remembers of one call while it lives."""

    call_id: str
    api: str
    transport: str | None
    upstream: str
    base: str
    record_mode: str
    model: str | None = None  # for its sidebands, which never name it
    answered: bool = False
    ended: bool = False
    audio_recorded: bool = False


@dataclass(frozen=True)
class CallStep:
    """One handled request: its records, and what the process must do about it."""

    records: list[Record]
    call: CallState | None = None
    metric_labels: tuple[str, str, str] | None = None  # api, transport, outcome: counted once
    observe: bool = False  # a call to attach an observer to now
    ended: bool = False  # the call is over: stop observing it


def _decoded(text: Any) -> bytes:
    return base64.b64decode(text) if isinstance(text, str) else b""


@dataclass(frozen=True)
class PendingSdp:
    """An SDP still to be read: parsing is left to `resolved`, off the recorder's event loop."""

    sdp: str
    record_mode: str


def sdp_record(sdp: str | None, record_mode: str) -> PendingSdp | None:
    return PendingSdp(sdp, record_mode) if sdp else None


def stored_sdp(pending: PendingSdp) -> Any:
    """What is stored of an SDP: its media summary; the SDP itself too under `--record full`."""
    summary = calls.sdp_summary(pending.sdp)
    if pending.record_mode != "full":
        return summary
    sdp = redact_text(_ICE_PWD.sub(r"\1[REDACTED]", pending.sdp))
    return {**(summary or {}), "sdp": sdp}


def resolved(records: Sequence[Record]) -> list[Record]:
    """`records` with their SDPs read (slow the first time: the parser's import takes seconds,
    which is why this runs on the call-records thread, not the event loop)."""
    done: list[Record] = []
    for record in records:
        if isinstance(record, CallSeen) and (record.offer or record.answer):
            offer, answer = record.offer, record.answer
            record = dataclasses.replace(
                record,
                offer=stored_sdp(offer) if isinstance(offer, PendingSdp) else offer,
                answer=stored_sdp(answer) if isinstance(answer, PendingSdp) else answer,
            )
        done.append(record)
    return done


class CallRecorder:
    """Every call of one recorder process, by id, and the client secrets minted through it."""

    def __init__(self, proxy_id: str | None = None, redact_pii: bool = False) -> None:
        self.proxy_id = proxy_id
        self.redact_pii = redact_pii  # --redact-pii: a refer's number, the config's text
        self.calls: OrderedDict[str, CallState] = OrderedDict()
        self._secrets: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._usage: OrderedDict[str, CallUsage] = OrderedDict()

    def handle(self, fields: dict[str, Any]) -> CallStep:
        request = calls.call_request(str(fields.get("method", "")), str(fields.get("path", "")))
        if request is None:
            return CallStep([])
        status = fields.get("status")
        body = calls.call_body(
            str(fields.get("request_type", "")), _decoded(fields.get("request_body"))
        )
        if request.action == calls.SECRET:
            self._secret_minted(status, fields)
            return CallStep([])
        if request.action == calls.CREATE:
            return self._created(request, fields, body)
        return self._steered(request, fields, body)

    def _secret_minted(self, status: Any, fields: dict[str, Any]) -> None:
        """Remember a client secret's session config (by the key's fingerprint, never the key):
        a browser's call created with that key gets its model and config."""
        if not isinstance(status, int) or status >= 300:
            return
        value, session = calls.secret_session(
            calls.json_object(_decoded(fields.get("response_body")))
        )
        fingerprint = key_fingerprint(value)
        if fingerprint is None or session is None:
            return
        self._secrets[fingerprint] = session
        while len(self._secrets) > MAX_SECRETS:
            self._secrets.popitem(last=False)

    def _created(
        self, request: calls.CallRequest, fields: dict[str, Any], body: calls.CallBody
    ) -> CallStep:
        ts = float(fields.get("answered_at") or fields.get("requested_at") or 0)
        status = fields.get("status")
        mode = str(fields.get("record_mode", "full"))
        reply_type = str(fields.get("response_type", ""))
        reply = calls.call_body(reply_type, _decoded(fields.get("response_body")))
        call_id = calls.call_id_from_location(fields.get("location")) or calls.call_id_from_reply(
            request.api, reply.fields
        )
        ok = isinstance(status, int) and 200 <= status < 300 and call_id is not None
        session = body.session or self._secrets.get(str(fields.get("key_fingerprint")))
        seen = CallSeen(
            id=call_id if ok and call_id else uuid7(),
            api=request.api,
            created_at=utc(ts),
            transport=calls.WEBRTC,
            status="active" if ok else FAILED,
            model=calls.session_model(session),
            config=self._config(session, mode),
            key_fingerprint=fields.get("key_fingerprint"),
            create_status=status if isinstance(status, int) else None,
            offer=sdp_record(body.sdp, mode),
            answer=sdp_record(reply.sdp, mode) if ok else None,
            upstream=fields.get("upstream"),
            client_addr=fields.get("client_addr"),
            proxy_id=self.proxy_id,
        )
        event = self._event(seen.id, ts, calls.CREATE, ok, status, fields)
        if not ok:
            records: list[Record] = [seen, event, CallChanged(seen.id, ended_at=utc(ts))]
            return CallStep(records, metric_labels=(request.api, calls.WEBRTC, FAILED))
        state = self._remember(seen.id, request, calls.WEBRTC, fields)
        state.answered, state.model = True, seen.model
        labels = (request.api, calls.WEBRTC, ANSWERED)
        return CallStep([seen, event], state, metric_labels=labels, observe=True)

    def _steered(
        self, request: calls.CallRequest, fields: dict[str, Any], body: calls.CallBody
    ) -> CallStep:
        call_id = str(request.call_id)
        ts = float(fields.get("answered_at") or fields.get("requested_at") or 0)
        status = fields.get("status")
        ok = isinstance(status, int) and 200 <= status < 300
        mode = str(fields.get("record_mode", "full"))
        state = self.calls.get(call_id)
        # Only SIP calls are accepted, rejected or referred: one first seen so is a SIP call.
        transport = calls.SIP if request.action != calls.HANGUP else None
        records: list[Record] = []
        if state is None:
            state = self._remember(call_id, request, transport, fields)
            records.append(
                CallSeen(
                    id=call_id,
                    api=request.api,
                    created_at=utc(ts),
                    transport=transport,
                    status="ringing",
                    key_fingerprint=fields.get("key_fingerprint"),
                    upstream=fields.get("upstream"),
                    client_addr=fields.get("client_addr"),
                    proxy_id=self.proxy_id,
                )
            )
        records.append(self._event(state, ts, request.action, ok, status, fields, body))
        if not ok:
            # A SIP call whose accept failed stays unanswered: the caller hears nothing of us.
            first = request.action == calls.ACCEPT and not state.answered
            return CallStep(records, state, self._labels(state, FAILED) if first else None)
        return self._applied(state, request.action, ts, body, mode, records)

    def _applied(
        self,
        state: CallState,
        action: str,
        ts: float,
        body: calls.CallBody,
        mode: str,
        records: list[Record],
    ) -> CallStep:
        """The records and effects of a control request the upstream carried out."""
        outcome: str | None = None
        if action == calls.ACCEPT:
            session = calls.accepted_session(state.api, body.fields)
            state.model = calls.session_model(session) or state.model
            records.append(
                CallChanged(
                    state.call_id,
                    status="active",
                    model=state.model,
                    config=self._config(session, mode),
                    answered_at=utc(ts),
                )
            )
            outcome = None if state.answered else ANSWERED
            state.answered = True
            return CallStep(records, state, self._labels(state, outcome), observe=True)
        if action == calls.REJECT:
            outcome = None if state.answered else REJECTED
            state.answered = True
        state.ended = True
        status = REJECTED if action == calls.REJECT else "ended"
        reason = self._end_reason(state, action, body)
        records.append(
            CallChanged(state.call_id, status=status, ended_at=utc(ts), end_reason=reason)
        )
        return CallStep(records, state, self._labels(state, outcome), ended=True)

    @staticmethod
    def _labels(state: CallState, outcome: str | None) -> tuple[str, str, str] | None:
        return None if outcome is None else (state.api, state.transport or "unknown", outcome)

    @staticmethod
    def _end_reason(state: CallState, action: str, body: calls.CallBody) -> str:
        """`calls.end_reason`: who ended the call through rtrec, and how."""
        if action == calls.REJECT:
            code = calls.reject_status(state.api, body.fields)
            return f"rejected ({code})" if code is not None else "rejected"
        return "referred" if action == calls.REFER else "hung up"

    def _event(
        self,
        call: CallState | str,
        ts: float,
        action: str,
        ok: bool,
        status: Any,
        fields: dict[str, Any],
        body: calls.CallBody | None = None,
    ) -> CallEventRecord:
        """The call event of a request: `created`, `accepted`…, or `accept_failed`…"""
        detail: dict[str, Any] = {"path": redact_url(str(fields.get("path", "")))}
        if fields.get("error"):
            detail["error"] = redact_text(str(fields["error"]))
        if isinstance(call, CallState) and body is not None and action == calls.REJECT:
            detail["status_code"] = calls.reject_status(call.api, body.fields)
        if body is not None and action == calls.REFER:
            target = redact_text(calls.refer_target(body.fields) or "")
            detail["target_uri"] = redact_pii(target) if self.redact_pii else target
        kind = _EVENT_KIND[action] if ok else f"{action}_failed"
        return CallEventRecord(
            call_id=call.call_id if isinstance(call, CallState) else call,
            ts=utc(ts),
            kind=kind,
            status=status if isinstance(status, int) else None,
            detail=detail,
        )

    def _config(self, session: dict[str, Any] | None, mode: str) -> Any:
        """The session config as stored: secrets (and with `--redact-pii`, personal data)
        redacted; none at all under `metadata`."""
        if session is None or mode == "metadata":
            return None
        config = redact_value(copy.deepcopy(session))
        if self.redact_pii:
            redact_strings(config)
        return config

    def _remember(
        self,
        call_id: str,
        request: calls.CallRequest,
        transport: str | None,
        fields: dict[str, Any],
    ) -> CallState:
        state = CallState(
            call_id=call_id,
            api=request.api,
            transport=transport,
            upstream=str(fields.get("upstream", "")),
            base=request.base,
            record_mode=str(fields.get("record_mode", "full")),
        )
        self.calls[call_id] = state
        while len(self.calls) > MAX_CALLS:
            self.calls.popitem(last=False)
        return state

    def ended(self, call_id: str, ts: float, reason: str) -> list[Record]:
        """The call ended without a request through rtrec (its sideband closed for good)."""
        state = self.calls.get(call_id)
        if state is None or state.ended:
            return []
        state.ended = True
        return [
            CallChanged(call_id, status="ended", ended_at=utc(ts), end_reason=reason),
            CallEventRecord(call_id, utc(ts), "ended", detail={"reason": reason}),
        ]

    def model_of(self, call_id: str) -> str | None:
        state = self.calls.get(call_id)
        return state.model if state is not None else None

    def of_call(self, call_id: str, records: Sequence[Record]) -> list[Record]:
        """A sideband's records for `call_id`: usage and cost kept only the first time the call
        reports them (`CallUsage`), and the call marked as having audio."""
        state = self.calls.get(call_id)
        usage = self._usage_of(call_id)
        kept = [counted for record in records for counted in usage.kept(record)]
        audio = any(isinstance(record, AudioRecord) for record in records)
        if audio and state is not None and not state.audio_recorded:
            state.audio_recorded = True
            kept.append(CallChanged(call_id, audio_recorded=True))
        return kept

    def billed_of(self, call_id: str) -> BilledSoFar:
        """The GPT-Live seconds of a call already in the metrics, shared by its sessions."""
        return self._usage_of(call_id).billed

    def _usage_of(self, call_id: str) -> CallUsage:
        """A call's usage counted so far (whether or not rtrec saw it created)."""
        usage = self._usage.get(call_id)
        if usage is None:
            usage = self._usage[call_id] = CallUsage()
            while len(self._usage) > MAX_CALLS:
                self._usage.popitem(last=False)
        return usage


def is_call_record(record: Record) -> bool:
    return isinstance(record, (CallSeen, CallChanged, CallEventRecord))
