"""Tuning the interpreter for a long-running server."""

from __future__ import annotations

import gc

# A full collection walks every tracked object; the gateway keeps hundreds of thousands (sessions,
# cached content, waiting notifications), so each took tens of milliseconds, about once a second under
# load, holding up every request meanwhile. They are ten times rarer this way; the young generations,
# which find most cyclic garbage, are collected as often as before.
FULL_COLLECTION_EVERY = 100  # collections of the middle generation (the default is 10)


def tune_gc() -> None:
    """Leave what start-up created (modules, the app) out of collections, and collect fully less often."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
