"""Python's cyclic garbage collector, paused while many objects are built and kept."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of a load, a status, or a read of many tasks.

    A load builds some twenty tracked objects (models, their dicts, sets and
    lists) per task and keeps them all; a status holds columns of a million
    values, each list walked whole by every full collection (0.06-0.17 s of
    a warm status of a million tasks). Left running, the collector walks
    them in its young generations and then, each time they outnumber a
    quarter of the old ones, in full collections: about a fifth of the time
    of loading 10,000 tasks. Neither makes garbage cycles (reference
    counting frees what they drop), so the collector is paused for them. When
    it is over, the new objects are moved to the oldest generation without
    being walked (``gc.freeze()`` then ``gc.unfreeze()``, unless something
    else keeps objects frozen): otherwise the first young collection after
    the load would walk all of them at once. They are then walked at the
    next full collection, as any long-lived objects are. Nested loads and a
    collector paused by the caller are left alone.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
