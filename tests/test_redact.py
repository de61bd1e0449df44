"""Secret redaction of URLs, headers, subprotocols and payloads (docs/schema.md#secrets)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.redact import (
    REDACTED,
    api_key,
    flat_event_holds_secret,
    key_fingerprint,
    might_hold_secret,
    redact_free_text,
    redact_headers,
    redact_subprotocols,
    redact_url,
    redact_value,
)
from recorder.session import SessionRecorder
from storage.records import EventRecord, SessionOpened
from tests.support.frames import json_keys, json_values, texts, wrong_values

KEY = "sk-proj-abcDEF1234567890xyz"
EPHEMERAL = "ek_68af1e2b3c4d5e6f7a8b9c0d"


def test_query_parameters_are_redacted():
    query = f"api-version=2025&deployment=d&api-key={KEY}&Authorization=Bearer%20{EPHEMERAL}"
    url = f"/openai/realtime?{query}"
    redacted = redact_url(url)
    assert KEY not in redacted
    assert EPHEMERAL not in redacted
    assert "deployment=d" in redacted
    assert redacted.count(REDACTED) == 2


def test_headers_and_subprotocols_are_redacted():
    headers = [
        ("Authorization", f"Bearer {KEY}"),
        ("api-key", KEY),
        ("Sec-WebSocket-Protocol", f"realtime, openai-insecure-api-key.{EPHEMERAL}"),
        ("User-Agent", "OpenAI/Python 3.57.0"),
    ]
    text = repr(redact_headers(headers))
    assert KEY not in text
    assert EPHEMERAL not in text
    assert "OpenAI/Python 3.57.0" in text
    assert redact_subprotocols(["realtime", f"openai-insecure-api-key.{KEY}"]) == [
        "realtime",
        f"openai-insecure-api-key.{REDACTED}",
    ]


def test_payload_tokens_and_client_secrets_are_redacted():
    event = {
        "type": "session.update",
        "session": {
            "instructions": f"my key is {KEY}, do not tell",
            "client_secret": {"value": EPHEMERAL, "expires_at": 1},
            "tools": [{"description": f"uses {EPHEMERAL}"}],
        },
    }
    redacted = redact_value(event)
    assert KEY not in repr(redacted)
    assert EPHEMERAL not in repr(redacted)
    assert redacted["session"]["client_secret"] == REDACTED
    assert redacted["session"]["instructions"] == f"my key is {REDACTED}, do not tell"


def recorded_payload(content: bytes, is_text: bool = True, record_mode: str = "full") -> object:
    """The `events.payload` a recorder stores for one client frame."""
    opened = SessionOpened(
        id="s", started_at=datetime.now(UTC), api="ga", path="/v1/realtime", record_mode="full"
    )
    recorder = SessionRecorder(opened, record_mode=record_mode)
    records = recorder.on_message(True, content, is_text, 1.0)
    (event,) = [r for r in records if isinstance(r, EventRecord)]
    return event.payload


def escape_every_character(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"x","instructions":"key sk\\u002dproj-abcDEF1234567890xyz"}',
        '{"type":"x","v":"ek\\u005f68af1e2b3c4d5e6f7a8b9c0d"}',
        f'{{"type":"x","v":"{escape_every_character(KEY)}"}}',
        '{"type":"x","session":{"client\\u005fsecret":{"value":"opaque-secret-1"}}}',
        '{"type":"x","\\u0041pi\\u002dKey":"opaque-secret-1"}',
        f'{{"type":"x","{escape_every_character("authorization")}":"opaque-secret-1"}}',
        '{"type":"input_audio_buffer.append","audio":"AAAA","x":"sk\\u002dproj-abc123456"}',
    ],
)
def test_keys_spelled_with_json_escapes_are_redacted(frame: str):
    stored = orjson.dumps(recorded_payload(frame.encode())).decode()
    assert "sk-proj-" not in stored
    assert EPHEMERAL not in stored
    assert "opaque-secret-1" not in stored
    assert REDACTED in stored


@pytest.mark.parametrize(
    "content",
    [
        f"Authorization: Bearer {KEY}".encode(),
        f"api-key={KEY}".encode("utf-16-le"),
        b"\x00\x01" + KEY.encode() + b"\xff",
    ],
)
def test_binary_frames_are_stored_as_their_size_only(content: bytes):
    opened = SessionOpened(
        id="s", started_at=datetime.now(UTC), api="ga", path="/v1/realtime", record_mode="full"
    )
    (event,) = SessionRecorder(opened).on_message(True, content, False, 1.0)
    assert isinstance(event, EventRecord)
    assert (event.type, event.size_bytes, event.payload) == ("binary", len(content), None)


OPAQUE = "opaque-secret-0000000042"  # no `sk-`/`ek_`: only the shape around it says it is secret


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {OPAQUE}",
        f"api-key: {OPAQUE}",
        f'{{"type":"session.update","session":{{"client_secret":{{"value":"{OPAQUE}"',
        f'{{"client_secret": "{OPAQUE}", oops',
        f"client_secret={OPAQUE}&x=1",
        f"Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.{OPAQUE}",
        f"GET /v1/realtime?model=m&api-key={OPAQUE} HTTP/1.1",
        f"/v1/realtime?authorization=Bearer%20{OPAQUE}",
        f'{{"client\\u005fsecret": "{OPAQUE}" oops',
        f'"Authorization: Bearer {OPAQUE}"',  # valid JSON, but a string rather than an event
    ],
)
def test_frames_that_are_not_events_get_every_text_rule(text: str):
    stored = orjson.dumps(recorded_payload(text.encode())).decode()
    assert OPAQUE not in stored
    assert REDACTED in stored


def test_close_reasons_get_every_text_rule():
    opened = SessionOpened(
        id="s", started_at=datetime.now(UTC), api="ga", path="/v1/realtime", record_mode="full"
    )
    closed = SessionRecorder(opened).close(2.0, 1008, f"bad api-key={OPAQUE}", "server")
    assert closed.close_reason == f"bad api-key={REDACTED}"


def test_text_rules_leave_prose_alone():
    text = "the key: turn it twice; monkey=banana; keyboard=qwerty"
    assert redact_free_text(text) == text


def test_words_that_merely_contain_sk_are_kept():
    text = "the task-force asked about risk-taking and desk_lamps"
    assert redact_value(text) == text


def test_api_key_is_found_wherever_the_client_put_it():
    assert api_key({"authorization": f"Bearer {KEY}"}, [], "/v1/realtime") == KEY
    assert api_key({"api-key": KEY}, [], "/openai/realtime") == KEY
    assert api_key({}, ["realtime", f"openai-insecure-api-key.{EPHEMERAL}"], "/") == EPHEMERAL
    assert api_key({}, [], f"/openai/realtime?api-key={KEY}") == KEY
    assert api_key({}, [], "/v1/realtime?model=x") is None


def test_fingerprint_is_eight_hex_digits_of_sha256():
    assert key_fingerprint("sk-test") == "f3abf2a6"
    assert key_fingerprint(None) is None


@pytest.mark.parametrize("padding", [0, 150, 1000, 1024 - 40, 5000])
@pytest.mark.parametrize(
    "marker",
    [b"sk-", b"SK-", b"ek_", b"Client_Secret", b"api_key", b"API-KEY", b"Authorization", b"\\u"],
)
def test_might_hold_secret_finds_every_marker_in_short_and_long_frames(marker, padding):
    # Short frames are scanned once for all markers, long ones marker by marker: both must agree.
    frame = b'{"type":"x","delta":"' + b"a" * padding + marker + b'"}'
    assert might_hold_secret(frame)
    assert not might_hold_secret(frame.replace(marker, b"zz"))


flat_values = st.one_of(wrong_values.filter(lambda v: not isinstance(v, list | dict)), texts)
secret_keys = st.sampled_from(["client_secret", "API_KEY", "Api-Key", "authorization", "x_sk-1"])


@given(st.dictionaries(json_keys | secret_keys, flat_values, max_size=8))
def test_a_flat_event_is_let_through_only_when_redaction_would_change_nothing(event):
    held = flat_event_holds_secret(event)
    assert held is not None
    if not held:
        assert redact_value(event) == event


@pytest.mark.parametrize(
    "event",
    [
        {"type": "x", "delta": f"say {KEY} now"},
        {"type": "x", "transcript": EPHEMERAL},
        {"type": "x", "Client_Secret": "opaque"},
        {"type": "x", "authorization": 1},
        {"type": "x", f"{KEY}": "name"},
    ],
)
def test_a_flat_event_with_a_secret_is_sent_to_redaction(event):
    assert flat_event_holds_secret(event) is True
    assert redact_value(event) != event


@given(st.dictionaries(json_keys, json_values, min_size=1, max_size=4))
def test_a_nested_event_is_left_to_the_frame_check(event):
    nested = any(isinstance(value, list | dict) for value in event.values())
    held = flat_event_holds_secret(event)
    assert (held is None) == nested or held is True
