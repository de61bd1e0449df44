"""A call's usage counted once: a response (or transcription) two sidebands of one call report."""

from __future__ import annotations

import dataclasses

from storage.records import Record, ResponseDone, TranscriptionRecord


def usage_key(record: Record) -> str | None:
    """What identifies a record's usage within its call; None for records without usage."""
    if isinstance(record, ResponseDone):
        return f"response:{record.response_id}"
    if isinstance(record, TranscriptionRecord) and record.item_id is not None:
        return f"transcription:{record.item_id}"
    return None


def without_usage(record: Record) -> Record:
    """The same record with nothing to count: its usage and cost went with the first copy."""
    if isinstance(record, ResponseDone):
        usage = dict.fromkeys(record.usage)
        return dataclasses.replace(record, usage=usage, cost_usd=None, cost_estimated=None)
    if isinstance(record, TranscriptionRecord):
        return dataclasses.replace(
            record,
            input_tokens=None,
            output_tokens=None,
            total_tokens=None,
            input_audio_tokens=None,
            input_text_tokens=None,
            seconds=None,
            cost_usd=None,
        )
    return record
