"""Call-control requests of the voice APIs (WebRTC and SIP calls): paths, bodies, ids, SDP.

The Realtime API creates a call with `POST /v1/realtime/calls` (an SDP offer, raw or in a
multipart form with the session config) and answers `201` with the SDP answer and
`Location: /v1/realtime/calls/{call_id}`; GPT-Live creates one with `POST /v1/live/sessions`
(JSON in, JSON with `session.id` out). Both steer calls with `…/{id}/accept|reject|refer|hangup`
and watch them over a sideband WebSocket (`/v1/realtime?call_id=…`, `/v1/live/sessions/{id}/
attach`). See docs/realtime-api.md#calls. Pure functions: no I/O, every field optional.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# What a call-control request does; `secret` mints an ephemeral key (`ek_…`) for a browser.
CREATE, ACCEPT, REJECT, REFER, HANGUP, SECRET = (
    "create",
    "accept",
    "reject",
    "refer",
    "hangup",
    "secret",
)
CALL_ACTIONS = (ACCEPT, REJECT, REFER, HANGUP)
GA, LIVE = "ga", "live"  # `calls.api`, as `sessions.api` names the Realtime GA interface
WEBRTC, SIP = "webrtc", "sip"
# The reject status OpenAI applies when a Realtime reject names none (call_reject_params.py).
DEFAULT_REJECT_STATUS = 603
SIDEBAND, OBSERVER = "sideband", "observer"  # `sessions.call_role`

# Optional prefixes (`/openai` on Azure, `/v1`) before the API's own path.
_CREATE = re.compile(r"^(?P<base>.*?)/(?P<api>realtime/calls|live/sessions)/?$")
_ACTION = re.compile(
    r"^(?P<base>.*?)/(?:realtime/calls/(?P<rtc>[^/]+)|live/sessions/(?P<live>[^/]+))"
    r"/(?P<action>accept|reject|refer|hangup)/?$"
)
_SECRET = re.compile(r"^(?P<base>.*?)/realtime/client_secrets/?$")
_LOCATION_ID = re.compile(r"/realtime/calls/(?P<id>[^/?#]+)/?(?:[?#].*)?$")
_LIVE_ATTACH = re.compile(r"/live/sessions/(?P<id>[^/?#]+)/attach/?$")


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A recognised call-control request: what it does, for which API, and its call if named."""

    action: str
    api: str
    call_id: str | None = None
    base: str = ""  # the path before the API's own part (`/v1`, `/openai/v1`)


def call_request(method: str, path: str) -> CallRequest | None:
    """The call-control request `method path` is, or None for anything else."""
    if method.upper() != "POST":
        return None
    route = path.partition("?")[0]
    if match := _CREATE.match(route):
        api = GA if match["api"] == "realtime/calls" else LIVE
        return CallRequest(CREATE, api, None, match["base"])
    if match := _ACTION.match(route):
        api, call_id = (GA, match["rtc"]) if match["rtc"] else (LIVE, match["live"])
        return CallRequest(match["action"], api, call_id, match["base"])
    if match := _SECRET.match(route):
        return CallRequest(SECRET, GA, None, match["base"])
    return None


def sideband_path(base: str, api: str, call_id: str) -> str:
    """The sideband WebSocket path of a call, under the same `base` its requests used."""
    if api == LIVE:
        return f"{base}/live/sessions/{call_id}/attach"
    return f"{base}/realtime?call_id={call_id}"


def sideband_carries_audio(api: str) -> bool:
    """Whether a call's sideband carries its audio: GPT-Live's reflects the caller's and sends
    the model's (T/connect_server_event). A Realtime call's audio travels over RTP only (that its
    sideband never carries any is not confirmed: audio it did carry is recorded all the same)."""
    return api == LIVE


def sideband_call_id(path: str) -> str | None:
    """The call a sideband WebSocket path names (`/realtime?call_id=`, `/live/…/attach`)."""
    route, _, query = path.partition("?")
    if route.rstrip("/").endswith("/realtime"):
        values = parse_qs(query).get("call_id")
        return values[0] if values and values[0] else None
    match = _LIVE_ATTACH.search(route)
    return match["id"] if match else None


def call_id_from_location(location: str | None) -> str | None:
    """`rtc_…` from a create's `Location: /v1/realtime/calls/rtc_…` (absolute URLs too)."""
    match = _LOCATION_ID.search(location or "")
    return match["id"] if match else None


def call_id_from_reply(api: str, reply: Any) -> str | None:
    """The call id in a create's JSON reply: GPT-Live's `session.id`, else a top-level `id`."""
    if not isinstance(reply, dict):
        return None
    session = reply.get("session")
    if api == LIVE and isinstance(session, dict) and isinstance(session.get("id"), str):
        return str(session["id"])
    value = reply.get("id")
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class CallBody:
    """What a call-control body carries: the SDP (offer or answer), the session config, the rest."""

    sdp: str | None = None
    session: dict[str, Any] | None = None
    fields: dict[str, Any] | None = None  # the whole JSON object, when the body is one


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body) if body else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def call_body(content_type: str, body: bytes) -> CallBody:
    """Read an SDP, multipart (`sdp` + `session` parts) or JSON body; unreadable gives empty."""
    kind = content_type.partition(";")[0].strip().lower()
    if kind == "application/sdp":
        return CallBody(sdp=body.decode("utf-8", "replace"))
    if kind == "multipart/form-data":
        parts = _form_parts(content_type, body)
        session = json_object(parts["session"].encode()) if "session" in parts else None
        return CallBody(sdp=parts.get("sdp"), session=session)
    fields = json_object(body)
    if fields is None:
        return CallBody()
    transport = fields.get("transport")
    sdp = transport.get("sdp") if isinstance(transport, dict) else None
    session = fields.get("session")
    return CallBody(
        sdp=sdp if isinstance(sdp, str) else None,
        session=session if isinstance(session, dict) else None,
        fields=fields,
    )


def _form_parts(content_type: str, body: bytes) -> dict[str, str]:
    """The named text parts of a `multipart/form-data` body, read by the stdlib's MIME parser."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return {}
    parts: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload.decode("utf-8", "replace")
    return parts


def accepted_session(api: str, fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """The session config of an accept: the Realtime body itself, GPT-Live's `session`."""
    if fields is None:
        return None
    session = fields if api == GA else fields.get("session")
    return session if isinstance(session, dict) else None


def session_model(session: dict[str, Any] | None) -> str | None:
    model = session.get("model") if session else None
    return model if isinstance(model, str) and model else None


def reject_status(api: str, fields: dict[str, Any] | None) -> int | None:
    """The SIP status a reject asks for; Realtime's default when it names none."""
    status = (fields or {}).get("status_code")
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    return DEFAULT_REJECT_STATUS if api == GA else None


def refer_target(fields: dict[str, Any] | None) -> str | None:
    target = (fields or {}).get("target_uri")
    return target if isinstance(target, str) else None


def secret_session(reply: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    """A client secret's reply: the `ek_…` value (to fingerprint, never to keep) and its session."""
    if reply is None:
        return None, None
    value, session = reply.get("value"), reply.get("session")
    return (
        value if isinstance(value, str) else None,
        session if isinstance(session, dict) else None,
    )


def sdp_summary(sdp: str) -> dict[str, Any] | None:
    """What an SDP says about the media: kinds, directions, codecs, a data channel. No addresses,
    ICE candidates, credentials or fingerprints; None when it is not SDP that parses."""
    # aiortc's parser is heavy to import and only calls need it.
    from aiortc.sdp import SessionDescription

    if not sdp.lstrip().startswith("v="):  # aiortc reads anything, even no SDP at all
        return None
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception:  # aiortc raises whatever its line parsers raise on bad input
        return None
    media = []
    for description in parsed.media:
        entry: dict[str, Any] = {"kind": description.kind, "direction": description.direction}
        codecs = [
            f"{codec.mimeType}/{codec.clockRate}" + (f"/{codec.channels}" if codec.channels else "")
            for codec in description.rtp.codecs
        ]
        if codecs:
            entry["codecs"] = codecs
        if description.sctp_port is not None:
            entry["data_channel"] = True
        media.append(entry)
    return {"media": media}
