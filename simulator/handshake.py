"""What the simulator reads from a WebSocket upgrade request: headers, offered subprotocols and the
API key wherever the client put it, kept as a :class:`Handshake` record."""

from __future__ import annotations

from dataclasses import dataclass

from websockets.datastructures import Headers

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."


@dataclass
class Handshake:
    """One HTTP upgrade request the simulator received."""

    conn_id: int
    path: str
    headers: dict[str, str]
    subprotocols: list[str]
    #: The HTTP status the simulator answered with (101, 403, 404, ...; 0 while undecided).
    status: int = 0


def is_live_path(route: str) -> bool:
    """GPT-Live's primary WebSocket: ``/v1/live/sessions`` (Azure: ``/openai/v1/live/sessions``)."""
    return route.rstrip("/").endswith("/v1/live/sessions")


def header_dict(headers: Headers) -> dict[str, str]:
    """The request headers by lower-case name, repeated headers joined as HTTP joins them."""
    out: dict[str, str] = {}
    for name, value in headers.raw_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def offered_subprotocols(headers: Headers) -> list[str]:
    """Every subprotocol the client offered, over all ``Sec-WebSocket-Protocol`` headers."""
    return [
        proto.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for proto in value.split(",")
        if proto.strip()
    ]


def api_key_of(
    headers: dict[str, str], subprotocols: list[str], query: dict[str, list[str]]
) -> str | None:
    """The API key wherever the client put it: header, key subprotocol or query string."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    if headers.get("api-key", "").strip():
        return headers["api-key"].strip()
    for proto in subprotocols:
        if proto.startswith(KEY_SUBPROTOCOL_PREFIX) and len(proto) > len(KEY_SUBPROTOCOL_PREFIX):
            return proto[len(KEY_SUBPROTOCOL_PREFIX) :]
    for value in query.get("api-key", []):
        if value.strip():
            return value.strip()
    for value in query.get("Authorization", []):
        if value[:7].lower() == "bearer " and value[7:].strip():
            return value[7:].strip()
    return None
