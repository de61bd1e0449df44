"""A writer observer for tests: what `storage.writer.Writer` reported, batch by batch."""

from __future__ import annotations


class WriterTally:
    """Records each committed batch's size, drops by reason and database errors."""

    def __init__(self) -> None:
        self.drops: dict[str, int] = {}
        self.db_errors = 0
        self.batches: list[int] = []

    @property
    def records(self) -> int:
        """Records committed so far."""
        return sum(self.batches)

    def batch_written(self, records: int, seconds: float) -> None:
        self.batches.append(records)

    def dropped_records(self, reason: str, count: int) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + count

    def db_error(self) -> None:
        self.db_errors += 1
