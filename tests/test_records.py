"""Record classes behave as the frozen dataclasses they were: slotted, hashed by value."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from storage import records

RECORD_CLASSES = [
    value
    for value in vars(records).values()
    if isinstance(value, type) and value.__module__ == records.__name__
]


def test_every_record_class_is_a_slotted_dataclass():
    assert len(RECORD_CLASSES) >= 10
    for cls in RECORD_CLASSES:
        assert dataclasses.is_dataclass(cls), cls
        assert "__slots__" in vars(cls), cls


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_records_hash_like_frozen_dataclasses(cls):
    # A frozen dataclass is hashable by its fields; sets and dict keys of records keep working.
    assert cls.__hash__ is not None


def test_equal_records_are_equal_and_hash_alike():
    ts = datetime(2026, 12, 7, tzinfo=UTC)
    first = records.EventRecord("s", 3, ts, "client", "x", 10, event_id="e")
    second = records.EventRecord("s", 3, ts, "client", "x", 10, event_id="e")
    assert first == second
    assert hash(first) == hash(second)
    assert first != dataclasses.replace(first, seq=4)
