"""What a call's sideband says about the phone line itself: ringing, answered, failed, DTMF.

A SIP call's keypresses and an outbound call's progress arrive only as sideband events (Realtime's
`input_audio_buffer.dtmf_event_received`, GPT-Live's `transport.*`; see
/work/shared/reference/gpt-live.md), so a call's lifecycle reads them from its sessions' events.
Pure functions over decoded events; nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

REALTIME_DTMF = "input_audio_buffer.dtmf_event_received"
LIVE_DTMF_RECEIVED = "transport.dtmf.received"
LIVE_DTMF_SENT = "transport.dtmf.sent"
# GPT-Live's legacy server name for `transport.dtmf.sent`; the same string is also the
# sideband's command, so only the server's direction counts as a keypress sent.
LIVE_DTMF_SEND = "transport.dtmf.send"
LIVE_RINGING = "transport.ringing"
LIVE_ANSWERED = "transport.answered"
LIVE_FAILED = "transport.failed"
TRANSPORT_EVENT_TYPES = frozenset(
    {
        REALTIME_DTMF,
        LIVE_DTMF_RECEIVED,
        LIVE_DTMF_SENT,
        LIVE_DTMF_SEND,
        LIVE_RINGING,
        LIVE_ANSWERED,
        LIVE_FAILED,
    }
)
# The steps of a call's lifecycle these events are (`transport_step`).
RINGING, ANSWERED, FAILED, DTMF_RECEIVED, DTMF_SENT = (
    "ringing",
    "answered",
    "failed",
    "DTMF received",
    "DTMF sent",
)
_STEPS = {
    REALTIME_DTMF: DTMF_RECEIVED,
    LIVE_DTMF_RECEIVED: DTMF_RECEIVED,
    LIVE_DTMF_SENT: DTMF_SENT,
    LIVE_DTMF_SEND: DTMF_SENT,
    LIVE_RINGING: RINGING,
    LIVE_ANSWERED: ANSWERED,
    LIVE_FAILED: FAILED,
}


def transport_step(event_type: str, direction: str, payload: Any) -> tuple[str, str] | None:
    """The lifecycle step (and its detail: the key pressed, why it failed) a sideband event is,
    or None; a client's `transport.dtmf.send` is a request, not yet a keypress."""
    step = _STEPS.get(event_type)
    if step is None or direction != "server":
        return None
    fields = payload if isinstance(payload, dict) else {}
    if step in (DTMF_RECEIVED, DTMF_SENT):
        key = fields.get("event")
        return step, key if isinstance(key, str) else ""
    if step == FAILED:
        error = fields.get("error")
        error = error if isinstance(error, dict) else {}
        said = [str(error[k]) for k in ("code", "message") if isinstance(error.get(k), str)]
        return step, ": ".join(said)
    return step, ""
