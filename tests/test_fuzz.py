"""Fuzzing the frame parser, the per-message recorder and redaction with arbitrary frames."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxy import protocol
from proxy.redact import REDACTED, redact_free_text, redact_url, redact_value
from proxy.session import RECORD_MODES, SessionRecorder
from storage.records import AudioRecord, EventRecord, SessionOpened
from tests.conftest import FIXTURES_DIR

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# docs/schema.md#secrets names these fields; their values are secrets whatever they hold.
SECRET_FIELD_NAMES = frozenset({"client_secret", "api_key", "api-key", "authorization"})
# A key-like token that no redaction may leave behind (docs/schema.md#secrets: `sk-…` / `ek_…`).
KEY_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:sk-|ek_)[A-Za-z0-9_\-]{6,}")

FIXTURE_EVENTS = [
    orjson.dumps(json.loads(line)["event"])
    for name in ("ga.jsonl", "beta.jsonl")
    for line in (FIXTURES_DIR / name).read_text().splitlines()
    if line
]

# --------------------------------------------------------------------------- strategies

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


# --------------------------------------------------------------------------- oracles


def spec_type(content: bytes, is_text: bool) -> str:
    """How `events.type` (docs/schema.md) types a message, decided apart from `proxy.protocol`."""
    if not is_text:
        return "binary"
    try:
        event = json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError):
        return "invalid"
    if isinstance(event, dict) and isinstance(event.get("type"), str):
        return event["type"]
    return "invalid"


def flatten(value: Any) -> Iterator[tuple[str, Any]]:
    """A JSON value as a flat token stream, dictionary keys included; iterative, for deep values."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield "dict", len(item)
            for key, child in reversed(item.items()):
                stack.append(child)
                stack.append(("key", key))
        elif isinstance(item, list):
            yield "list", len(item)
            stack.extend(reversed(item))
        elif isinstance(item, tuple):
            yield item
        else:
            yield type(item).__name__, repr(item)


def strings_in(value: Any) -> list[str]:
    return [token for kind, token in flatten(value) if kind == "key"] + [
        item for item in _leaves(value) if isinstance(item, str)
    ]


def _leaves(value: Any) -> Iterator[Any]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def secret_fields_redacted(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if key.lower() in SECRET_FIELD_NAMES and child != REDACTED:
                    return False
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return True


def deep_value(depth: int, shape: str) -> Any:
    """Nesting deeper than any recursion limit, built without recursion."""
    value: Any = "a sk-deep-nested-key-123456 z" if "key" in shape else 1
    for _ in range(depth):
        value = [value] if shape.startswith("list") else {"a": value}
    return value


def new_recorder(record_mode: str) -> SessionRecorder:
    opened = SessionOpened(
        id="fuzz", started_at=datetime.now(UTC), api="ga", path="/v1/realtime", record_mode="full"
    )
    return SessionRecorder(opened, record_mode=record_mode)


# --------------------------------------------------------------------------- properties


@FUZZ
@given(
    messages=st.lists(st.tuples(st.booleans(), frames), min_size=1, max_size=3),
    record_mode=st.sampled_from(RECORD_MODES),
)
@example(
    messages=[
        (
            True,
            (
                b'{"type":"session.update","session":{"audio":{"input":{"format":{"type":[]}}}}}',
                True,
            ),
        ),
        (
            False,
            (
                b'{"type":"response.created","response":{"id":"r",'
                b'"audio":{"output":{"format":{"type":{}}}}}}',
                True,
            ),
        ),
        (True, ('{"type":"x"}'.encode("utf-16-le"), True)),
        (False, (nested_frame(1200, "list-key"), True)),
        (True, (nested_frame(1400, "dict-event-key"), True)),
    ],
    record_mode="full",
)
def test_any_frames_give_exactly_one_storable_event_each(
    messages: list[tuple[bool, tuple[bytes, bool]]], record_mode: str
):
    recorder = new_recorder(record_mode)
    for seq, (from_client, (content, is_text)) in enumerate(messages):
        event_type, decoded = protocol.parse_frame(content, is_text)
        assert event_type == spec_type(content, is_text)
        if event_type not in (protocol.BINARY, protocol.INVALID):
            assert decoded["type"] == event_type

        records = recorder.on_message(from_client, content, is_text, 1_700_000_000.0 + seq)
        (event,) = [r for r in records if isinstance(r, EventRecord)]
        assert records[0] is event
        assert (event.seq, event.session_id, event.size_bytes) == (seq, "fuzz", len(content))
        assert event.direction == ("client" if from_client else "server")
        assert event.type == event_type
        if record_mode == "metadata":
            assert event.payload is None
        if record_mode != "full":
            assert not any(isinstance(r, AudioRecord) for r in records)
        # What the writer will store serializes, and holds no key.
        json.dumps(event.payload)
        assert not any(KEY_TOKEN.search(s) for s in strings_in(event.payload))
        assert secret_fields_redacted(event.payload)


@settings(max_examples=200, deadline=None)
@given(
    value=json_values | events,
    depth=st.sampled_from([0, 1100]),
    shape=st.sampled_from(["list", "dict-key", "list-key"]),
)
def test_redaction_is_idempotent_and_leaves_no_key(value: Any, depth: int, shape: str):
    value = [value, deep_value(depth, shape)]
    before = list(flatten(value))
    redacted = redact_value(value)
    assert list(flatten(value)) == before  # the input is left alone
    assert list(flatten(redact_value(redacted))) == list(flatten(redacted))
    assert not any(KEY_TOKEN.search(s) for s in strings_in(redacted))
    assert secret_fields_redacted(redacted)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.text(max_size=20),
    key=planted_keys,
    param=st.sampled_from(["api-key", "api_key", "Authorization", "key"]),
)
@example(prefix="//[", key="sk-abcdefgh", param="api-key")
def test_url_helpers_never_raise_and_hide_query_keys(prefix: str, key: str, param: str):
    value = f"Bearer%20{key}" if param == "Authorization" else key
    url = f"{prefix}/v1/realtime?model=m&{param}={value}"
    redacted = redact_url(url)
    assert isinstance(protocol.is_realtime_path(url), bool)
    assert isinstance(protocol.model_from_path(url), str | None)
    if "#" not in prefix:  # past a `#` it is a fragment, which clients never send
        assert key not in redacted


# How a secret sits in text that is not JSON: header lines, query strings, cut-off JSON objects.
SECRET_SHAPES = [
    "Authorization: Bearer {}",
    "authorization=Bearer%20{}",
    "Proxy-Authorization: Basic {}",
    "api-key: {}",
    "X-Api-Key:{}",
    "api_key={}",
    "?key={}",
    '"client_secret": "{}"',
    '"client_secret":{{"value":"{}","expires_at":1',
    "client_secret={}",
    '"Authorization": "Bearer {}"',
    "openai-insecure-api-key.{}",
    "client\\u005fsecret={}",
]


@settings(max_examples=300, deadline=None)
@given(
    before=plain_text,
    shape=st.sampled_from(SECRET_SHAPES),
    # The `-` marks the secret: random text never holds one.
    secret=st.text(alphabet=KEY_CHARS.replace("_", ""), min_size=1, max_size=20).map(
        lambda body: "opaque-" + body
    ),
    after=plain_text,
    from_client=st.booleans(),
)
def test_secrets_in_frames_that_are_not_json_are_redacted(
    before: str, shape: str, secret: str, after: str, from_client: bool
):
    text = f"{before} {shape.format(secret)} {after}"
    assert "opaque-" not in redact_free_text(text)
    (event,) = new_recorder("full").on_message(from_client, text.encode(), True, 1.0)
    assert "opaque-" not in json.dumps(event.payload)  # type: ignore[union-attr]
