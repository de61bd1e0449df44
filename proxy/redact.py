"""Secret redaction (spec §4): keys are replaced before anything is stored, logged or exported."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl, quote

REDACTED = "[REDACTED]"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."

SECRET_HEADERS = frozenset({"authorization", "api-key", "proxy-authorization", "cookie"})
SECRET_QUERY_PARAMS = frozenset({"api-key", "api_key", "authorization", "key"})
SECRET_FIELDS = frozenset({"client_secret", "api_key", "api-key", "authorization"})

# OpenAI keys (`sk-...`, `sk-proj-...`) and ephemeral keys (`ek_...`) wherever they appear in text.
_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:sk-|ek_)[A-Za-z0-9_\-]{6,}")
# Cheap pre-check: only frames that might hold a secret are walked. Substring tests on the
# lowered bytes rather than a case-insensitive regex, which costs ~175 us on a 6 KB audio frame.
# A `\u` escape can spell any character of a key or field name (`sk\u002d…`, `client\u005fsecret`)
# so the raw bytes cannot rule a secret out: such frames are always walked, on their decoded text.
_SECRET_MARKERS = (
    b"sk-",
    b"ek_",
    b"client_secret",
    b"api_key",
    b"api-key",
    b"authorization",
    b"\\u",
)


def redact_text(text: str) -> str:
    """`text` with every `sk-…`/`ek_…` token replaced."""
    return _TOKEN.sub(REDACTED, text)


def might_hold_secret(raw: bytes) -> bool:
    """False only when no decoding of `raw` can hold a key or a secret field name."""
    lowered = raw.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact_value(value: Any) -> Any:
    """A copy of a decoded JSON value with secret fields and embedded tokens (keys too) replaced."""
    # Iterative: a frame may nest deeper than Python's recursion limit and still be valid JSON.
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while pending:
        item, parent, slot = pending.pop()
        if isinstance(item, dict):
            copied: dict[Any, Any] = {}
            for key, child in item.items():
                secret = isinstance(key, str) and key.lower() in SECRET_FIELDS
                name = redact_text(key) if isinstance(key, str) else key
                copied[name] = REDACTED
                if not secret:
                    pending.append((child, copied, name))
            parent[slot] = copied
        elif isinstance(item, list):
            parent[slot] = copied_list = [None] * len(item)
            pending.extend((child, copied_list, index) for index, child in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = redact_text(item)
        else:
            parent[slot] = item
    return root[0]


def redact_url(url: str) -> str:
    """A path or URL with secret query parameters and embedded tokens replaced."""
    # Split by hand: urlsplit raises on request targets such as `//[…`, which clients can send.
    base, mark, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    if not query:
        return redact_text(url)
    pairs = [
        (name, REDACTED if name.lower() in SECRET_QUERY_PARAMS else value)
        for name, value in parse_qsl(query, keep_blank_values=True)
    ]
    query = "&".join(f"{quote(n, safe='')}={quote(v, safe='[]')}" for n, v in pairs)
    return redact_text(f"{base}{mark}{query}{hash_mark}{fragment}")


def redact_subprotocols(subprotocols: list[str]) -> list[str]:
    return [
        KEY_SUBPROTOCOL_PREFIX + REDACTED
        if p.startswith(KEY_SUBPROTOCOL_PREFIX)
        else redact_text(p)
        for p in subprotocols
    ]


def redact_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Handshake headers fit for logs: credentials and key subprotocols replaced."""
    redacted = []
    for name, value in headers:
        lower = name.lower()
        if lower in SECRET_HEADERS:
            value = REDACTED
        elif lower == "sec-websocket-protocol":
            value = ", ".join(redact_subprotocols(split_subprotocols(value)))
        redacted.append((name, redact_text(value)))
    return redacted


def split_subprotocols(header_value: str) -> list[str]:
    return [p.strip() for p in header_value.split(",") if p.strip()]


def api_key(headers: dict[str, str], subprotocols: list[str], path: str) -> str | None:
    """The API key a client presented, from any of the places spec §4 names."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    if headers.get("api-key"):
        return headers["api-key"].strip()
    for protocol in subprotocols:
        if protocol.startswith(KEY_SUBPROTOCOL_PREFIX):
            return protocol[len(KEY_SUBPROTOCOL_PREFIX) :] or None
    for name, value in parse_qsl(path.partition("#")[0].partition("?")[2]):
        lower = name.lower()
        if lower in ("api-key", "api_key") and value:
            return value
        if lower == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip() or None
    return None


def key_fingerprint(key: str | None) -> str | None:
    """First 8 hex digits of SHA-256 of the key: identifies it without revealing it."""
    if not key:
        return None
    return hashlib.sha256(key.encode()).hexdigest()[:8]
