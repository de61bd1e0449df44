"""Secret redaction of URLs, headers, subprotocols and payloads (spec §4)."""

from __future__ import annotations

from proxy.redact import (
    REDACTED,
    api_key,
    key_fingerprint,
    redact_headers,
    redact_subprotocols,
    redact_url,
    redact_value,
)

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
