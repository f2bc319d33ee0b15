"""The worker's garbage-collector settings (see ``streams.worker.settle_heap``)."""

from __future__ import annotations

import gc

from streams.settings import Tuning
from streams.worker import settle_heap


def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer():
    before = gc.get_threshold()
    try:
        settle_heap(Tuning().gc_young_threshold)
        assert gc.get_freeze_count() > 10_000  # the modules and objects already built
        assert gc.get_threshold()[0] == Tuning().gc_young_threshold > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
