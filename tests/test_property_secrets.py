"""Session properties keep no credential or control character, and a NUL never costs a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select

from protocol.redact import REDACTED
from protocol.secret_shapes import is_high_entropy, looks_secret
from proxy.tags import property_value, session_tags
from recorder.session import SessionRecorder
from storage.models import Event, RealtimeSession, SessionProperty, Transcription, table
from storage.records import SessionOpened
from storage.sanitize import NUL_TEXT, storable
from storage.writer import Writer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

# Each was stored verbatim before (issue 22), and reached the dashboard, `sessions --json` and
# `/metrics` when the property is a metric label.
SECRET_VALUES = [
    "0123456789abcdef0123456789ABCDEF",  # an Azure OpenAI key
    "password=hunter2",
    "db pwd: hunter2",
    "Bearer abc.def.ghi",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "xoxb-123456789012-abcdefghijkl",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "sk-proj-abcdefghijklmnop",
    "ek_1234567890abcdef",
    "note: 9fK2xQ7mZp4LwR8tV3nB6yH1",  # a random word: high entropy
]
SECRET_NAMES = ["api_key", "X-Secret", "auth-token", "db_password", "authorization", "Key"]
HARMLESS = [
    "acme",
    "prod",
    "eu-west-1",
    "gpt-realtime-2025-08-28",
    "0191f3a2-7c1e-7b3d-9a4f-0123456789ab",  # a UUID is an id, not a key
    "a call about the internationalization of our checkout",
    "John Smith",
]


@pytest.mark.parametrize("value", SECRET_VALUES)
def test_a_credential_shaped_value_is_redacted(value: str):
    tags = session_tags({"Rtrec-Property-Note": value}, "/v1/realtime")
    assert dict(tags.properties) == {"note": REDACTED}


@pytest.mark.parametrize("value", SECRET_VALUES)
def test_a_credential_in_a_query_parameter_is_redacted(value: str):
    from urllib.parse import quote

    tags = session_tags({}, f"/v1/realtime?rtrec_note={quote(value)}")
    assert dict(tags.properties) == {"note": REDACTED}


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_value_whose_name_says_credential_is_redacted(name: str):
    tags = session_tags({f"Rtrec-Property-{name}": "acme"}, "/v1/realtime")
    assert list(dict(tags.properties).values()) == [REDACTED]


@pytest.mark.parametrize("value", HARMLESS)
def test_ordinary_values_are_kept(value: str):
    assert not looks_secret(value)
    assert property_value("customer", value) == value


def test_high_entropy_needs_length_letters_and_digits():
    assert is_high_entropy("9fK2xQ7mZp4LwR8tV3nB6yH1")
    assert not is_high_entropy("9fK2xQ7mZp4")
    assert not is_high_entropy("internationalizations")
    assert not is_high_entropy("aaaaaaaaaaaaaaaaaaaaaaaa1")


@pytest.mark.parametrize("raw", ["a\x00b", "a\x1bb", "a\nb", "a\x7fb", "a\x85b", "a\rb\x00"])
def test_control_characters_are_removed(raw: str):
    assert property_value("note", raw) == "ab"


def test_a_nul_in_a_query_parameter_is_gone():
    tags = session_tags({}, "/v1/realtime?rtrec_team=%00acme%00")
    assert dict(tags.properties) == {"team": "acme"}


def cleaned(opened: SessionOpened) -> SessionOpened:
    result = storable(opened)
    assert isinstance(result, SessionOpened)
    return result


def test_storable_cleans_tuples_at_any_depth():
    opened = SessionOpened(
        "s1", NOW, "ga", "/", "full", properties=(("team", "a\x00"), ("b\x00", "c"))
    )
    assert cleaned(opened).properties == (("team", "a" + NUL_TEXT), ("b" + NUL_TEXT, "c"))


def test_storable_keeps_the_shape_of_nested_tuples():
    nested: Any = ((("x\x00",), "y"),)
    opened = SessionOpened("s1", NOW, "ga", "/", "full", properties=nested)
    expected: Any = (((f"x{NUL_TEXT}",), "y"),)
    assert cleaned(opened).properties == expected


class Drops:
    def __init__(self) -> None:
        self.drops: dict[str, int] = {}

    def batch_written(self, records: int, seconds: float) -> None:
        pass

    def dropped_records(self, reason: str, count: int) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + count

    def db_error(self) -> None:
        pass


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table(model))).scalar_one())


def test_a_nul_anywhere_a_client_writes_costs_no_row(engine: Engine):
    """Properties (raw, as a relay of an older version hands them over), model, path, upstream,
    client address and every event field: all rows stored, nothing dropped."""
    opened = SessionOpened(
        "s\x00",
        NOW,
        "ga",
        "/v1/realtime?model=a\x00",
        "full",
        model="gpt\x00",
        upstream="http://up\x00",
        client_addr="127.0.0.1\x00",
        key_fingerprint="ab\x00",
        properties=(("team", "\x00"), ("env\x00", "prod\x00")),
        replay_of="r\x00",
        proxy_id="host\x00:1",
    )
    session = SessionRecorder(opened)
    events = [
        {"type": "x\x00", "event_id": "e\x00", "item_id": "i\x00", "response_id": "r\x00"},
        {"type": "error", "error": {"type": "t\x00", "code": "c\x00", "message": "\x00"}},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "transcript": "\x00",
            "item_id": "\x00",
        },
        {"type": "session.created", "session": {"id": "\x00", "model": "m\x00"}},
    ]
    drops = Drops()
    writer = Writer(engine, flush_interval_s=0.01, observer=drops)
    writer.start()
    writer.submit([opened])
    for event in events:
        writer.submit(session.on_message(False, orjson.dumps(event), True, 1.0))
    writer.close()
    assert drops.drops == {}
    assert count(engine, RealtimeSession) == 1
    assert count(engine, SessionProperty) == 2
    assert count(engine, Event) == len(events)
    assert count(engine, Transcription) == 1


def test_a_nul_tagged_session_through_the_tags_is_stored(engine: Engine):
    tags = session_tags({"Rtrec-Property-Env": "\x00"}, "/v1/realtime?rtrec_team=%00&model=%00")
    opened = SessionOpened("s1", NOW, "ga", tags.path, "full", properties=tags.properties)
    writer = Writer(engine, flush_interval_s=0.01)
    writer.start()
    writer.submit([opened])
    writer.close()
    assert count(engine, RealtimeSession) == 1
    assert count(engine, SessionProperty) == 2
