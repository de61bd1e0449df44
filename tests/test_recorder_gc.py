"""The recorder process settles the garbage collector once started (recorder.main.settle_gc)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from recorder.main import GC_YOUNG_THRESHOLD, settle_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_startup_objects_are_frozen_out_of_collections():
    settle_gc()
    assert gc.get_freeze_count() > 1000


@pytest.mark.usefixtures("restored_gc")
def test_young_collections_wait_for_more_allocations_and_older_ones_keep_their_rate():
    _, older, oldest = gc.get_threshold()
    settle_gc()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, older, oldest)
