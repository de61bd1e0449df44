"""Secret redaction: keys are replaced before anything is stored, logged or exported.

What counts as a secret, and where keys travel: docs/schema.md#secrets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
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


# Free text (a frame that is not JSON, a close reason) may carry a secret in any shape a header,
# a JSON field or a query string gives it: `Authorization: Bearer …`, `"client_secret": {…}`,
# `x-api-key=…`. `key` alone is a secret only as a query parameter (`key=`), not in prose (`key:`).
_CREDENTIAL_NAME = r"client[_-]secret|api[_-]key|(?:proxy-)?authorization|cookie|key"
_CREDENTIAL_VALUE = r"""
    "(?:[^"\\]|\\.)*"?                    # a JSON string, maybe cut off
  | '(?:[^'\\]|\\.)*'?
  | \{[^{}]*\}?                             # a client_secret object
  | (?:(?:bearer|basic)(?:\s+|%20|\+))?[^\s"'&,;{}\[\]<>]+
"""
_NAMED_CREDENTIAL = re.compile(
    rf"(?<![A-Za-z0-9])(?P<name>{_CREDENTIAL_NAME})(?P<sep>[\"']?\s*[:=]\s*)(?P<value>{_CREDENTIAL_VALUE})",
    re.IGNORECASE | re.VERBOSE,
)
_KEY_SUBPROTOCOL = re.compile(re.escape(KEY_SUBPROTOCOL_PREFIX) + r"[^\s,;\"']+", re.IGNORECASE)
# `\uXXXX` outside the surrogate range: enough to spell any key or field name.
_JSON_ESCAPE = re.compile(r"\\u(?![dD][89a-fA-F])([0-9a-fA-F]{4})")


def redact_text(text: str) -> str:
    """`text` with every `sk-…`/`ek_…` token replaced."""
    return _TOKEN.sub(REDACTED, text)


def _named_secret(match: re.Match[str]) -> str:
    name, sep, value = match["name"], match["sep"], match["value"]
    if name.lower() == "key" and ":" in sep:
        return match[0]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{name}{sep}{quote}{REDACTED}{quote}"


def _redact_shapes(text: str) -> str:
    lowered = text.lower()
    # Every name the two patterns look for contains one of these: skip the slow scans without.
    if any(word in lowered for word in ("key", "secret", "authorization", "cookie")):
        text = _NAMED_CREDENTIAL.sub(_named_secret, text)
        text = _KEY_SUBPROTOCOL.sub(KEY_SUBPROTOCOL_PREFIX + REDACTED, text)
    return redact_text(text)


def redact_free_text(text: str) -> str:
    """`text` with tokens, key subprotocols and named secrets (`api-key: …`) replaced.

    Text that spells a secret with JSON escapes (`client\\u005fsecret`) is kept decoded.
    """
    if "\\u" in text:
        decoded = _JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)), text)
        redacted = _redact_shapes(decoded)
        if redacted != decoded:
            return redacted
    return _redact_shapes(text)


# Short text (the few hundred bytes left of an audio event): one scan for every marker, a
# fixed-string alternation without IGNORECASE, ~1.5 us where seven `in` tests took ~3.5. Past
# ~1 KB the `in` tests (a fast search each) win again.
_ANY_SECRET_MARKER = re.compile(b"|".join(re.escape(marker) for marker in _SECRET_MARKERS))
_ONE_SCAN_MAX_BYTES = 1024


def might_hold_secret(raw: bytes) -> bool:
    """False only when no decoding of `raw` can hold a key or a secret field name."""
    lowered = raw.lower()
    if len(lowered) <= _ONE_SCAN_MAX_BYTES:
        return _ANY_SECRET_MARKER.search(lowered) is not None
    return any(marker in lowered for marker in _SECRET_MARKERS)


# What `redact_value` changes in an event: a secret field's value, and the `sk-`/`ek_` tokens
# of `redact_text` (case-sensitive, like `_TOKEN`) in any key or string.
def _key_may_change(key: str) -> bool:
    return key.lower() in SECRET_FIELDS or "sk-" in key or "ek_" in key


# Field names of the high-frequency events (audio and transcript deltas, appends, VAD), checked
# once here by the same rule; any other key is checked as it comes.
_PLAIN_KEYS = frozenset(
    key
    for key in (
        "event_id",
        "type",
        "response_id",
        "item_id",
        "output_index",
        "content_index",
        "delta",
        "audio",
        "obfuscation",
        "previous_item_id",
        "audio_start_ms",
        "audio_end_ms",
        "transcript",
        "logprobs",
    )
    if not _key_may_change(key)
)


def flat_event_holds_secret(event: dict[str, Any]) -> bool | None:
    """Whether `redact_value` would change a flat event (no object or array in it): exact, on
    the decoded text, so escapes need no care. None for a nested event: `might_hold_secret`."""
    for key, value in event.items():
        if key not in _PLAIN_KEYS and _key_may_change(key):
            return True
        kind = type(value)
        if kind is int or kind is float or kind is bool or value is None:
            continue  # nothing to redact (exact types first: half the cost of `isinstance`)
        if kind is str or isinstance(value, str):
            if "sk-" in value or "ek_" in value:
                return True
        elif isinstance(value, dict | list):
            return None
    return False


def redact_value(value: Any, redact_string: Callable[[str], str] = redact_text) -> Any:
    """A copy of a decoded JSON value with secret fields and embedded tokens (keys too) replaced.

    Strings go through `redact_string`: `redact_free_text` for values that are not events.
    """
    # Iterative: a frame may nest deeper than Python's recursion limit and still be valid JSON.
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while pending:
        item, parent, slot = pending.pop()
        if isinstance(item, dict):
            copied: dict[Any, Any] = {}
            for key, child in item.items():
                secret = isinstance(key, str) and key.lower() in SECRET_FIELDS
                name = redact_string(key) if isinstance(key, str) else key
                copied[name] = REDACTED
                if not secret:
                    pending.append((child, copied, name))
            parent[slot] = copied
        elif isinstance(item, list):
            parent[slot] = copied_list = [None] * len(item)
            pending.extend((child, copied_list, index) for index, child in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = redact_string(item)
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
    """The API key a client presented, from any of the places docs/schema.md#secrets names."""
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
