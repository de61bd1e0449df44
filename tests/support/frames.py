"""Hypothesis strategies for Realtime API frames, well-formed and not."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import orjson
from hypothesis import strategies as st

import protocol
from tests.support.fixtures import FIXTURES_DIR

FIXTURE_EVENTS = [
    orjson.dumps(json.loads(line)["event"])
    for name in ("ga.jsonl", "beta.jsonl")
    for line in (FIXTURES_DIR / name).read_text().splitlines()
    if line
]


# Random text never contains `-` or `_`, so it cannot spell a key by accident: every `sk-`/`ek_`
# in a generated value was planted on purpose, and each planted key must disappear.
plain_text = st.text(
    alphabet=st.characters(exclude_characters="-_", exclude_categories=["Cs"]), max_size=12
)


KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


planted_keys = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["sk-", "sk-proj-", "ek_", "sk-svcacct-"]),
    st.text(alphabet=KEY_CHARS, min_size=6, max_size=30),
)


text_with_key = st.builds(
    lambda before, sep, key, after: before + sep + key + sep + after,
    plain_text,
    st.sampled_from([" ", '"', "/", "=", ":", "\n", "\x00"]),
    planted_keys,
    plain_text,
)


texts = plain_text | text_with_key | st.sampled_from(["\x00", "a\x00b", "\ufeff", "😀" * 3])


# Wrong values for any field: strings, negatives, floats, nulls, integers past 64 bits, containers.
wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-1),
    st.floats(),
    texts,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(plain_text, st.integers(), max_size=2),
)


json_keys = (
    st.sampled_from(
        [
            "type",
            "event_id",
            "response_id",
            "item_id",
            "response",
            "item",
            "session",
            "usage",
            "audio",
            "delta",
            "format",
            "rate_limits",
            "client_secret",
            "Authorization",
            "api_key",
            "transcript",
            "obfuscation",
        ]
    )
    | plain_text
    | text_with_key
)


json_values = st.recursive(
    wrong_values,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


@st.composite
def mutated_fixture_events(draw: st.DrawFn) -> dict[str, Any]:
    """A real beta or GA event with some of its fields (usage counters, ids, formats) replaced."""
    event = orjson.loads(draw(st.sampled_from(FIXTURE_EVENTS)))
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(list(_paths(event))))
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(json_values)
    return event


USAGE_FIELDS = ("input_tokens", "output_tokens", "total_tokens")


DETAIL_FIELDS = ("text_tokens", "audio_tokens", "image_tokens", "cached_tokens")


@st.composite
def response_done_with_odd_usage(draw: st.DrawFn) -> dict[str, Any]:
    """`response.done` whose every usage counter may be of the wrong type or out of range."""
    counter = st.integers(min_value=0, max_value=10_000) | wrong_values
    cached = {k: draw(counter) for k in ("text_tokens", "audio_tokens", "image_tokens")}
    details = {k: draw(counter) for k in DETAIL_FIELDS} | {"cached_tokens_details": cached}
    usage = {k: draw(counter) for k in USAGE_FIELDS} | {
        "input_token_details": draw(st.just(details) | wrong_values),
        "output_token_details": {k: draw(counter) for k in ("text_tokens", "audio_tokens")},
    }
    return {
        "type": "response.done",
        "event_id": draw(texts),
        "response": {"id": draw(texts | wrong_values), "status": draw(texts), "usage": usage},
    }


events = st.one_of(
    mutated_fixture_events(),
    response_done_with_odd_usage(),
    st.builds(
        lambda kind, extra: {**extra, "type": kind},
        st.sampled_from(sorted(protocol.KNOWN_EVENT_TYPES)) | plain_text | text_with_key,
        st.dictionaries(json_keys, json_values, max_size=4),
    ),
)


# A JSON string literal, escapes included.
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')


def _escape_dashes(literal: re.Match[str]) -> str:
    return literal[0].replace("-", "\\u002d").replace("_", "\\u005F")


def _encode(value: Any, spelling: str) -> bytes:
    """JSON as clients may spell it: UTF-8, ASCII with escapes, or `-`/`_` escaped in strings."""
    text = json.dumps(value, ensure_ascii=spelling != "utf-8", allow_nan=True)
    if spelling == "escaped":  # `sk\u002d…`, `client\u005Fsecret`: keys the raw bytes do not show
        text = _STRING_LITERAL.sub(_escape_dashes, text)
    return text.encode()


spellings = st.sampled_from(["utf-8", "ascii", "escaped"])


def nested_frame(depth: int, shape: str) -> bytes:
    leaf = {"key": '"sk-deep-nested-key-123456"', "nul": '"\\u0000"'}.get(shape[-3:], "1")
    if shape.startswith("list"):
        body = "[" * depth + leaf + "]" * depth
    else:
        body = '{"a":' * depth + leaf + "}" * depth
    if "event" in shape:
        body = '{"type":"deep.event","v":' + body + "}"
    return body.encode()


# Nesting around every limit that matters: ours, the stdlib json's and orjson's.
depths = st.sampled_from([255, 256, 257, 998, 1000, 1023, 1024, 1025, 1495, 1496, 1497, 1498])


deep_frames = st.builds(
    nested_frame,
    depths | st.integers(1, 3000),
    st.sampled_from(
        ["list", "dict", "list-key", "dict-event", "list-event-key", "dict-event-nul", "list-nul"]
    ),
)


odd_literals = st.sampled_from(
    [
        b'{"type":"x","n":NaN,"m":-Infinity}',
        b'{"type":"x","s":"\\ud800 lone surrogate"}',
        b'{"type":"x","big":123456789012345678901234567890}',
        b'{"type":"x","nul":"a\\u0000b"}',
        b'{"type":"x","type":"y"}',
        '{"type":"x"}'.encode("utf-16-le"),
        b'\xef\xbb\xbf{"type":"x"}',
        b'{"type":null}',
        b'{"type":["x"]}',
        b"[]",
        b'"just a string"',
        b"",
        b"\x00",
        b"\xff\xfe\xfd",
    ]
)


@st.composite
def broken_json(draw: st.DrawFn) -> bytes:
    data = _encode(draw(events), "ascii")
    cut = draw(st.integers(0, len(data)))
    return data[:cut] + draw(st.binary(max_size=4))


shallow_payloads = st.one_of(
    st.builds(_encode, events, spellings),
    st.builds(_encode, json_values, spellings),
    odd_literals,
    broken_json(),
    st.binary(max_size=64),
)


text_payloads = shallow_payloads | deep_frames


# (content, is_text): text frames carry JSON-ish payloads, binary frames anything.
frames = st.tuples(text_payloads, st.just(True)) | st.tuples(
    st.binary(max_size=128) | text_payloads, st.just(False)
)


def spec_type(data: str | bytes, is_text: bool | None = None) -> str:
    """How `events.type` (docs/schema.md) types a message, decided apart from `protocol`:
    `data` as a WebSocket library gives it (str: text, bytes: binary), or bytes with `is_text`."""
    if not (isinstance(data, str) if is_text is None else is_text):
        return "binary"
    try:  # UTF-8 only: json.loads would guess UTF-16 or UTF-32 for bytes
        event = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (ValueError, RecursionError):
        return "invalid"
    if isinstance(event, dict) and isinstance(event.get("type"), str):
        return event["type"]
    return "invalid"
