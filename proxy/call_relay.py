"""The relay's part in recording calls: a call-control request and its answer, as a `CALL` item.

The relay neither parses nor changes these requests: it copies their bytes (base64) into one
hand-over item after the upstream answered, with the API key's fingerprint instead of the key.
The recorder process reads them (`recorder/calls.py`).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from mitmproxy import http

from protocol import calls
from protocol.redact import api_key, key_fingerprint, redact_url

CALL_KEY = "rtrec_call"
# Call-control bodies are an SDP or a session config: a few kilobytes. A larger body is not one
# rtrec reads (its size is still recorded).
MAX_BODY_BYTES = 256 * 1024


def mark_call_request(flow: http.HTTPFlow) -> bool:
    """Remember on the flow that it is a call-control request (checked once, at `request`)."""
    request = calls.call_request(flow.request.method, flow.request.path)
    if request is None:
        return False
    flow.metadata[CALL_KEY] = request
    return True


def is_call_request(flow: http.HTTPFlow) -> bool:
    return CALL_KEY in flow.metadata


def call_notice(flow: http.HTTPFlow, record_mode: str, error: str | None = None) -> dict[str, Any]:
    """The `CALL` item's fields: the request and the answer (or why none came), no secret."""
    request, response = flow.request, flow.response
    headers = {name.lower(): value for name, value in request.headers.items()}
    peer = flow.client_conn.peername
    fields: dict[str, Any] = {
        "requested_at": request.timestamp_start,
        "method": request.method,
        "path": redact_url(request.path),
        "request_type": headers.get("content-type", ""),
        "request_body": _body(request),
        "key_fingerprint": key_fingerprint(api_key(headers, [], request.path)),
        "upstream": f"{request.scheme}://{request.host}:{request.port}",
        "client_addr": f"{peer[0]}:{peer[1]}" if peer else None,
        "record_mode": record_mode,
        "error": error,
    }
    if response is not None:
        fields.update(
            answered_at=response.timestamp_end or time.time(),
            status=response.status_code,
            location=response.headers.get("location"),
            response_type=response.headers.get("content-type", ""),
            response_body=_body(response),
        )
    return fields


def _body(message: http.Message) -> str | None:
    content = message.get_content(strict=False)
    if content is None or len(content) > MAX_BODY_BYTES:
        return None
    return base64.b64encode(content).decode("ascii")
