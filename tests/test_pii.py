"""`--redact-pii`: card numbers, phones, e-mail addresses, IBANs and national ids never stored."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from analysis import export
from handover import wire as handover
from handover.wire import Item
from protocol.pii import redact_pii
from protocol.pricing import BUILTIN_PRICES, PriceTable
from recorder.metrics import Metrics
from recorder.pii_redaction import PiiRedactor
from recorder.property_labels import PropertyLabels
from recorder.recording import Recording
from recorder.session import SessionRecorder
from storage import detail
from storage.models import Base
from storage.records import EventRecord, SessionOpened
from storage.writer import Writer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
APP = Path(__file__).parent.parent / "dashboard" / "app.py"
CARD = "4242 4242 4242 4242"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"my card is {CARD}, thanks", "my card is [CARD], thanks"),
        ("card 4242-4242-4242-4242.", "card [CARD]."),
        ("card 4242424242424242", "card [CARD]"),
        ("amex 378282246310005 ok", "amex [CARD] ok"),
        ("call +1 415 555 2671 now", "call [PHONE] now"),
        ("call (415) 555-2671 now", "call [PHONE] now"),
        ("ring +44 20 7946 0958", "ring [PHONE]"),
        ("mail jane.doe+x@example.co.uk please", "mail [EMAIL] please"),
        ("iban DE89 3704 0044 0532 0130 00 ok", "iban [IBAN] ok"),
        ("iban GB82WEST12345698765432", "iban [IBAN]"),
        ("ssn 536-90-4399", "ssn [ID]"),
        ("dni 12345678Z", "dni [ID]"),
    ],
)
def test_personal_data_becomes_a_typed_placeholder(text: str, expected: str):
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "4242 4242 4242 4241",  # fails the Luhn check: not a card
        "order 12345 shipped in 2025",
        "gpt-realtime-2025-08-28",
        "the meeting is at 10:30 on 2026-12-06",
        "version 1.2.3, build 456",
        "no digits at all",
    ],
)
def test_other_text_is_kept(text: str):
    assert redact_pii(text) == text


def deltas(parts: list[str], event_type: str = "response.output_audio_transcript.delta") -> Any:
    return [
        {"type": event_type, "response_id": "r1", "item_id": "i1", "content_index": 0, "delta": p}
        for p in parts
    ]


@pytest.mark.parametrize(
    "parts",
    [
        ["my card is 4242 ", "4242 4242", " 4242 thanks"],
        ["my card is 42", "42424242424", "24242", "."],
        ["write to jane.doe", "@example", ".com today"],
        ["4242 4242 4242 4242"],
    ],
)
def test_a_number_split_across_deltas_is_never_stored(parts: list[str]):
    redactor = PiiRedactor()
    stored = []
    for event in deltas(parts):
        redactor.redact(event["type"], event)
        stored.append(event["delta"])
    joined = "".join(stored)
    digits = "".join(c for c in joined if c.isdigit())
    assert "4242" not in digits
    assert "@example" not in joined


def test_the_done_event_carries_the_whole_text_redacted():
    redactor = PiiRedactor()
    for event in deltas(["card 4242 4242 ", "4242 4242"]):
        redactor.redact(event["type"], event)
    done = {
        "type": "response.output_audio_transcript.done",
        "item_id": "i1",
        "transcript": f"card {CARD}",
    }
    redactor.redact(done["type"], done)
    assert done["transcript"] == "card [CARD]"
    assert not redactor._held


def test_function_call_arguments_are_redacted_as_they_stream_and_when_done():
    redactor = PiiRedactor()
    parts = ['{"card": "4242', " 4242 4242 ", '4242", "zip": "94107"}']
    stored = []
    for event in deltas(parts, "response.function_call_arguments.delta"):
        redactor.redact(event["type"], event)
        stored.append(event["delta"])
    assert "4242" not in "".join(stored)
    done: Any = {
        "type": "response.done",
        "response": {
            "id": "r1",
            "output": [
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "pay",
                    "arguments": f'{{"card": "{CARD}"}}',
                }
            ],
        },
    }
    redactor.redact(done["type"], done)
    assert done["response"]["output"][0]["arguments"] == '{"card": "[CARD]"}'
    assert done["response"]["output"][0]["call_id"] == "c1"


def open_item(properties: list[list[str]]) -> Item:
    fields = {
        "id": "s-pii",
        "started_at": NOW.timestamp(),
        "api": "ga",
        "path": "/v1/realtime",
        "record_mode": "full",
        "model": "gpt-realtime",
        "properties": properties,
    }
    return Item(handover.OPEN, 0, 1, 0, NOW.timestamp(), orjson.dumps(fields))


def message(seq: int, from_client: bool, event: dict[str, Any]) -> Item:
    flags = handover.IS_TEXT | (handover.FROM_CLIENT if from_client else 0)
    return Item(handover.MESSAGE, flags, 1, seq, NOW.timestamp() + seq, orjson.dumps(event))


SESSION = [
    (
        True,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"pay with {CARD}"}],
            },
        },
    ),
    (
        False,
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "delta": "my card is 4242 4242 ",
        },
    ),
    (
        False,
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "delta": "4242 4242",
        },
    ),
    (
        False,
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "transcript": f"my card is {CARD}",
        },
    ),
    *[
        (False, e)
        for e in deltas(
            ['{"card":"4242 4242', ' 4242 4242"}'], "response.function_call_arguments.delta"
        )
    ],
    (
        False,
        {
            "type": "response.function_call_arguments.done",
            "item_id": "i1",
            "arguments": f'{{"card":"{CARD}"}}',
        },
    ),
    (
        True,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": "c1",
                "output": f"charged {CARD}, receipt to jane@example.com",
            },
        },
    ),
]


def record_session(engine: Engine) -> Metrics:
    """The card session through the recorder's `Recording`, with `--redact-pii on`."""
    writer = Writer(engine, flush_interval_s=0.01)
    writer.start()
    labels = PropertyLabels(["note"])
    metrics = Metrics(CollectorRegistry(), ("note",), labels)
    recording = Recording(writer, metrics, PriceTable(BUILTIN_PRICES), redact_pii=True)
    recording.handle(1, open_item([["note", f"card {CARD}"]]))
    for seq, (from_client, event) in enumerate(SESSION):
        recording.handle(1, message(seq, from_client, event))
    recording.close_all("test over")
    writer.close()
    return metrics


def test_the_dashboard_shows_the_placeholder(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    record_session(engine)
    monkeypatch.setenv("RTREC_DB", db_url)
    monkeypatch.delenv("RTREC_DASHBOARD_PASSWORD", raising=False)
    test = AppTest.from_file(str(APP), default_timeout=30)
    test.query_params["session"] = "s-pii"
    test.run()
    assert not test.exception
    shown = "\n".join(
        str(getattr(element, "value", ""))
        for kind in ("markdown", "caption", "code", "text", "json")
        for element in test.get(kind)
    )
    assert "[CARD]" in shown
    assert "4242" not in shown


def test_a_recorded_session_holds_no_card_anywhere(
    engine: Engine, caplog: pytest.LogCaptureFixture
):
    """Transcript, function-call arguments, tool output and a property, through the recorder:
    nothing of the card is in the database, the JSONL export, the logs or /metrics."""
    caplog.set_level("DEBUG")
    metrics = record_session(engine)
    with engine.connect() as connection:
        rows = [repr(r) for t in Base.metadata.sorted_tables for r in connection.execute(select(t))]
        out = io.BytesIO()
        export.write_jsonl(out, detail.session_events(connection, "s-pii"))
    everything = "\n".join(rows) + out.getvalue().decode() + caplog.text
    everything += generate_latest(metrics.registry).decode()
    assert "[CARD]" in everything
    assert "[EMAIL]" in everything
    for needle in ("4242", "jane@example.com"):
        assert needle not in everything


def test_without_the_option_nothing_is_redacted():
    opened = SessionOpened("s1", NOW, "ga", "/", "full")
    event = {"type": "conversation.item.create", "item": {"text": f"card {CARD}"}}
    (first,) = SessionRecorder(opened).on_message(True, orjson.dumps(event), True, 0.0)
    assert isinstance(first, EventRecord)
    assert CARD in orjson.dumps(first.payload).decode()
