"""A call's usage counted once, whichever of its sidebands reported it.

Two sidebands of one call (the application's and the observer) report the same responses,
transcriptions and, for GPT-Live, the same cumulative billed seconds. A response's (or
transcription's) usage stays on the first copy; a call's seconds are kept on one session row,
the first of the call's sessions that reported them, and only ever grow there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from recorder.live_session import BilledSoFar
from storage.records import Record, ResponseDone, SessionUsageChanged, TranscriptionRecord


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


@dataclass
class CallUsage:
    """What of one call's usage is counted already, in storage and in the metrics."""

    counted: set[str] = field(default_factory=set)  # `usage_key`s
    seconds_holder: str | None = None  # the session row that holds the call's billed seconds
    seconds: float = -1.0  # the most cumulative billed seconds reported so far
    # Shared by the call's GPT-Live sessions: metric increments of cumulative usage, once.
    billed: BilledSoFar = field(default_factory=BilledSoFar)

    def kept(self, record: Record) -> list[Record]:
        """`record` as the call counts it: usage reported before leaves only the rest."""
        if isinstance(record, SessionUsageChanged):
            return self._seconds(record)
        key = usage_key(record)
        if key is None:
            return [record]
        if key in self.counted:
            return [without_usage(record)]
        self.counted.add(key)
        return [record]

    def _seconds(self, record: SessionUsageChanged) -> list[Record]:
        """Cumulative seconds go to the holder's row, and only when they did not go down (a
        sideband that lags behind another must not take back what that one reported)."""
        if record.billable_seconds is None:
            return [record]
        holder = self.seconds_holder = self.seconds_holder or record.id
        newest = record.billable_seconds >= self.seconds
        if newest:
            self.seconds = record.billable_seconds
        if newest and record.id == holder:
            return [record]
        own = SessionUsageChanged(
            record.id,
            context_usage_ratio=record.context_usage_ratio,
            end_reason=record.end_reason,
        )
        if not newest:
            return [own]
        moved = dataclasses.replace(record, id=holder, context_usage_ratio=None, end_reason=None)
        return [own, moved]
