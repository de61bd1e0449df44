"""Fuzzing the frame parser, the per-message recorder and redaction with arbitrary frames."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import protocol
from handover.options import RECORD_MODES
from protocol.redact import REDACTED, redact_free_text, redact_url, redact_value
from recorder.session import SessionRecorder
from storage.records import AudioRecord, EventRecord, SessionOpened
from tests.support.frames import (
    KEY_CHARS,
    events,
    frames,
    json_values,
    nested_frame,
    plain_text,
    planted_keys,
    spec_type,
)

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# docs/schema.md#secrets names these fields; their values are secrets whatever they hold.
SECRET_FIELD_NAMES = frozenset({"client_secret", "api_key", "api-key", "authorization"})
# A key-like token that no redaction may leave behind (docs/schema.md#secrets: `sk-…` / `ek_…`).
KEY_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:sk-|ek_)[A-Za-z0-9_\-]{6,}")


# --------------------------------------------------------------------------- strategies


# --------------------------------------------------------------------------- oracles


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
