"""Simulated inbound SIP calls: the ``realtime.call.incoming`` webhook, signed as OpenAI signs
webhooks (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), and
the caller's side of the conversation once the call is accepted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from simulator.audio import tone_burst
from simulator.calls import Call
from simulator.events import JSON, new_id

#: A caller's turn: a held vowel long enough for the VAD, then the silence that ends the turn.
CALLER_TURN = tone_burst(100, 700, 700)
CALLER_CHUNK_BYTES = 24000 * 2 // 10  # 100 ms of 24 kHz PCM16
#: The DTMF key the simulated caller presses once (a menu choice).
CALLER_KEY = "1"


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for ``body`` (``v1,<base64 HMAC-SHA256>``)."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else None
    signed = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key or secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def incoming_event(call: Call, caller: str) -> JSON:
    """The webhook event of a new call from ``caller``: ``realtime.call.incoming`` with its
    ``call_id``, or GPT-Live's ``live.transport.incoming`` with its ``session_id``."""
    if call.api == "realtime":
        kind, ids = "realtime.call.incoming", {"call_id": call.call_id}
    else:
        kind, ids = "live.transport.incoming", {"type": "sip", "session_id": call.call_id}
    return {
        "id": new_id("evt"),
        "object": "event",
        "created_at": int(time.time()),
        "type": kind,
        "data": {
            **ids,
            "sip_headers": [
                {"name": "From", "value": f"<sip:{caller}@sip.example.test>"},
                {"name": "To", "value": "<sip:proj_simulated@sip.api.openai.com>"},
                {"name": "Call-ID", "value": new_id("sipcall")},
            ],
            "sip_media_security": "srtp",
        },
    }


async def post_webhook(url: str, secret: str, event: JSON) -> int:
    """POST ``event`` to ``url`` signed with ``secret``; the receiver's status code."""
    body = json.dumps(event, separators=(",", ":"))
    webhook_id = new_id("wh")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, webhook_id, timestamp, body),
    }
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the webhook URL must be http(s), not {url!r}")
    request = urllib.request.Request(url, body.encode(), headers, method="POST")  # noqa: S310
    return await asyncio.to_thread(_send, request)


def _send(request: urllib.request.Request) -> int:
    # No proxy from the environment: the receiver is the tester's own server.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


async def speak_as_caller(call: Call, turns: int, chunk_pause_s: float = 0.01) -> None:
    """Feed ``turns`` caller turns into the accepted call, in 100 ms chunks, pressing
    :data:`CALLER_KEY` after the first, then stay silent."""
    for turn in range(turns):
        for start in range(0, len(CALLER_TURN), CALLER_CHUNK_BYTES):
            await call.feed_audio(CALLER_TURN[start : start + CALLER_CHUNK_BYTES])
            await asyncio.sleep(chunk_pause_s)
        if turn == 0:
            await call.press_key(CALLER_KEY)
        await asyncio.sleep(0.5)  # let the assistant answer before the next turn
