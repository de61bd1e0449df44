"""The call-control HTTP endpoints of the Realtime API (``/v1/realtime/calls``, its
``accept|reject|refer|hangup``, ``/v1/realtime/client_secrets``) and the simulator's own
``POST /simulator/sip/calls``, which rings a simulated SIP call."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import secrets
import time
from dataclasses import dataclass, field

from simulator.call_engine import SessionConfigError
from simulator.calls import Call, CallRegistry
from simulator.events import JSON
from simulator.front_door import HttpRequest, HttpResponse
from simulator.server import INVALID_KEY
from simulator.sip import incoming_event, post_webhook, speak_as_caller

_CALL_ACTION = re.compile(
    r"^/v1/(?:realtime/calls/(?P<rtc>rtc_\w+)|live/sessions/(?P<live>live_\w+))"
    r"/(?P<action>accept|reject|refer|hangup)$"
)
CLIENT_SECRET_TTL_S = 600


class HttpError(Exception):
    """An API error answered with ``status`` and OpenAI's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> HttpResponse:
        body = {"error": {"message": self.message, "type": "invalid_request_error"}}
        body["error"]["code"] = self.code
        return _json_response(self.status, body)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _accepted_session(call: Call, body: JSON) -> JSON:
    """The session config of an accept: the Realtime body itself, GPT-Live's ``session``."""
    session = body if call.api == "realtime" else body.get("session")
    if not isinstance(session, dict) or session.get("type") != call.api:
        where = "type" if call.api == "realtime" else "session.type"
        raise HttpError(400, "missing_required_parameter", f"'{where}' must be '{call.api}'.")
    return session


def _json_response(status: int, body: JSON) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _json_body(request: HttpRequest) -> JSON:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise HttpError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise HttpError(400, "invalid_json", "The body must be a JSON object.")
    return body


def _multipart(request: HttpRequest) -> dict[str, str]:
    """The named text parts of a ``multipart/form-data`` body."""
    head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    parts: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload.decode()
    return parts


@dataclass
class CallEndpoints:
    """Routes the call-control requests to the :class:`CallRegistry`."""

    registry: CallRegistry
    webhook_url: str | None = None
    #: A fresh ``whsec_`` secret per server unless one is configured, as OpenAI hands out.
    webhook_secret: str = field(default_factory=new_webhook_secret)
    client_secrets: dict[str, float] = field(default_factory=dict)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return await self._route(request)
        except HttpError as err:
            return err.response()
        except SessionConfigError as err:
            return HttpError(400, "invalid_session_config", str(err)).response()

    async def _route(self, request: HttpRequest) -> HttpResponse:
        path = request.path.partition("?")[0]
        if request.method != "POST":
            raise HttpError(404, "not_found", f"No route for {request.method} {path}.")
        if path == "/simulator/sip/calls":
            return await self._ring(request)
        self._authorize(request)
        if path == "/v1/realtime/calls":
            return await self._create(request)
        if path == "/v1/realtime/client_secrets":
            return self._client_secret(request)
        if path == "/v1/live/sessions":
            return await self._create_live(request)
        match = _CALL_ACTION.match(path)
        if match is None:
            raise HttpError(404, "not_found", f"No route for POST {path}.")
        call_id = match.group("rtc") or match.group("live")
        call = self.registry.calls.get(call_id)
        if call is None:
            raise HttpError(404, "call_not_found", f"Call {call_id} not found.")
        await self._act(call, match.group("action"), _json_body(request))
        return HttpResponse(200)

    def _authorize(self, request: HttpRequest) -> None:
        key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not key:
            raise HttpError(401, "missing_bearer", "You must provide an API key.")
        expired = key.startswith("ek_") and self.client_secrets.get(key, 0) < time.time()
        if key == INVALID_KEY or expired:
            raise HttpError(401, "invalid_api_key", "Incorrect API key provided.")

    async def _create(self, request: HttpRequest) -> HttpResponse:
        content_type = request.headers.get("content-type", "")
        session: JSON | None = None
        if content_type.startswith("application/sdp"):
            offer = request.body.decode()
        elif content_type.startswith("multipart/form-data"):
            parts = _multipart(request)
            offer = parts.get("sdp", "")
            session = json.loads(parts["session"]) if "session" in parts else None
        else:
            raise HttpError(400, "invalid_content_type", "Send application/sdp or multipart.")
        if not offer.startswith("v="):
            raise HttpError(400, "invalid_offer", "The body is not an SDP offer.")
        call, answer = await self.registry.create_webrtc("realtime", offer, session)
        headers = {"Content-Type": "application/sdp"}
        headers["Location"] = f"/v1/realtime/calls/{call.call_id}"
        return HttpResponse(201, answer.encode(), headers)

    def _client_secret(self, request: HttpRequest) -> HttpResponse:
        body = _json_body(request)
        expires_after = body.get("expires_after") or {}
        seconds = int(expires_after.get("seconds", CLIENT_SECRET_TTL_S))
        value = "ek_" + secrets.token_hex(16)
        expires_at = int(time.time()) + seconds
        self.client_secrets[value] = expires_at
        session = body.get("session") or {"type": "realtime", "model": "gpt-realtime"}
        return _json_response(200, {"value": value, "expires_at": expires_at, "session": session})

    async def _create_live(self, request: HttpRequest) -> HttpResponse:
        """GPT-Live's WebRTC create: JSON in, ``{session:{id}, transport:{sdp}}`` out."""
        if "live" not in self.registry.engines:
            raise HttpError(501, "not_implemented", "This simulator has no GPT-Live engine.")
        body = _json_body(request)
        transport = body.get("transport") or {}
        offer = transport.get("sdp") if transport.get("type") == "webrtc" else None
        if not isinstance(offer, str) or not offer.startswith("v="):
            raise HttpError(400, "invalid_transport", "transport must be {type:'webrtc', sdp}.")
        call, answer = await self.registry.create_webrtc("live", offer, body.get("session"))
        reply = {"session": {"id": call.call_id}, "transport": {"type": "webrtc", "sdp": answer}}
        return _json_response(200, reply)

    async def _act(self, call: Call, action: str, body: JSON) -> None:
        if call.ended.is_set():
            raise HttpError(400, "call_ended", f"Call {call.call_id} has ended.")
        if action in ("accept", "reject") and call.status != "ringing":
            raise HttpError(400, "call_not_ringing", f"Call {call.call_id} is not ringing.")
        if action == "accept":
            await self.registry.accept(call, _accepted_session(call, body))
            call.spawn(speak_as_caller(call, turns=2))
        elif action == "reject":
            status = body.get("status_code", 603 if call.api == "realtime" else None)
            if not isinstance(status, int) or not 300 <= status <= 699:
                raise HttpError(400, "invalid_status_code", "status_code must be 300-699.")
            await self.registry.end(call, "rejected")
        else:  # refer hands the caller to another number: the call leaves the simulator
            await self.registry.end(call)

    async def _ring(self, request: HttpRequest) -> HttpResponse:
        body = _json_body(request)
        url = body.get("webhook_url") or self.webhook_url
        if not isinstance(url, str):
            raise HttpError(400, "missing_webhook_url", "No webhook URL configured or given.")
        api = body.get("api", "realtime")
        if api not in self.registry.engines:
            raise HttpError(400, "invalid_api", f"No engine simulates the {api!r} API here.")
        call = self.registry.ring_sip(api)
        event = incoming_event(call, str(body.get("caller", "+15550100")))
        secret = body.get("webhook_secret") or self.webhook_secret
        try:
            status = await post_webhook(url, str(secret), event)
        except (OSError, ValueError) as exc:  # nobody heard it ring: the caller hangs up
            await self.registry.end(call)
            raise HttpError(
                502, "webhook_failed", f"The webhook was not delivered: {exc}"
            ) from None
        return _json_response(200, {"call_id": call.call_id, "webhook_status": status})
