"""The worker's garbage-collector settings (see ``streams.app.settle_heap``)."""

from __future__ import annotations

import gc

from streams.app import GC_YOUNG_THRESHOLD, settle_heap


def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer():
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 10_000  # the modules and objects already built
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
