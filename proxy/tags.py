"""Session tags a client sends with its upgrade request: custom properties and the replayed session.

The convention follows other LLM proxies (Helicone's `Helicone-Property-*`): a header
`Rtrec-Property-<Name>: value`, or a query parameter `rtrec_<name>=value` for browsers that cannot
set headers on a WebSocket; `Rtrec-Replay-Of: <session id>` (or `rtrec_replay_of=`) marks a replay.
Pure functions: the addon strips what they find before the request goes upstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from handover.properties import property_name
from protocol.redact import REDACTED, SECRET_FIELDS, SECRET_QUERY_PARAMS, redact_text
from protocol.secret_shapes import is_secret_name, looks_secret, without_control_characters

HEADER_PREFIX = "rtrec-"
PROPERTY_HEADER_PREFIX = "rtrec-property-"
REPLAY_HEADER = "rtrec-replay-of"
QUERY_PREFIX = "rtrec_"
REPLAY_QUERY = "rtrec_replay_of"

# Bounds keep a careless or hostile client from filling the table: the first properties win.
MAX_PROPERTIES = 20
MAX_VALUE_CHARS = 256
_SESSION_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_SECRET_NAMES = frozenset(n.replace("-", "_") for n in SECRET_FIELDS | SECRET_QUERY_PARAMS)


@dataclass(frozen=True, slots=True)
class SessionTags:
    """What a client tagged its session with, and the request without the tags."""

    properties: tuple[tuple[str, str], ...]
    replay_of: str | None
    path: str
    #: The request's header names (as sent) that carry tags and must not reach the upstream.
    tag_headers: tuple[str, ...]


def property_value(name: str, raw: str) -> str:
    """The value as stored: control characters removed, cut to the bound, and the whole value
    `[REDACTED]` when its name or its shape says it is a credential (docs/schema.md#secrets)."""
    value = without_control_characters(raw).strip()
    if name in _SECRET_NAMES or is_secret_name(name) or looks_secret(value):
        return REDACTED
    return redact_text(value)[:MAX_VALUE_CHARS]


def _split_query(path: str) -> tuple[str, list[str], str]:
    base, _, rest = path.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    return base, [p for p in query.split("&") if p], hash_mark + fragment


def _query_tags(pieces: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, value) of every `rtrec_*` parameter, and the other pieces untouched."""
    tags, kept = [], []
    for piece in pieces:
        raw_name, _, raw_value = piece.partition("=")
        name = unquote_plus(raw_name)
        if name.lower().startswith(QUERY_PREFIX):
            tags.append((name.lower(), unquote_plus(raw_value)))
        else:
            kept.append(piece)
    return tags, kept


def strip_query_tags(path: str) -> str:
    """`path` without its `rtrec_*` query parameters; every other byte of it kept as sent."""
    base, pieces, tail = _split_query(path)
    _, kept = _query_tags(pieces)
    query = "&".join(kept)
    return f"{base}{'?' if query else ''}{query}{tail}"


def session_tags(headers: Mapping[str, str], path: str) -> SessionTags:
    """The properties and `replay_of` of an upgrade request, headers first, then the query."""
    candidates: list[tuple[str, str]] = []
    replay_of: str | None = None
    tag_headers = []
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith(HEADER_PREFIX):
            continue
        tag_headers.append(name)
        if lower == REPLAY_HEADER:
            replay_of = replay_of or value.strip()
        elif lower.startswith(PROPERTY_HEADER_PREFIX):
            candidates.append((lower.removeprefix(PROPERTY_HEADER_PREFIX), value))
    for name, value in _query_tags(_split_query(path)[1])[0]:
        if name == REPLAY_QUERY:
            replay_of = replay_of or value.strip()
        else:
            candidates.append((name.removeprefix(QUERY_PREFIX), value))
    return SessionTags(
        properties=_bounded(candidates),
        replay_of=replay_of if replay_of and _SESSION_ID.fullmatch(replay_of) else None,
        path=strip_query_tags(path),
        tag_headers=tuple(tag_headers),
    )


def _bounded(candidates: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    properties: dict[str, str] = {}
    for raw_name, raw_value in candidates:
        name = property_name(raw_name)
        if name is None or name in properties:
            continue
        if len(properties) >= MAX_PROPERTIES:
            break
        properties[name] = property_value(name, raw_value)
    return tuple(sorted(properties.items()))
