"""Pause Python's cyclic garbage collector while the app builds many objects at once.

Reading a 2,000-generation trajectory allocates some hundred thousand objects, and every few
tens of thousands the collector walks all live objects again (a full pass took 0.15 s each, two
or three times while a run was listed). None of those objects forms a cycle worth collecting,
so the passes find nothing: the app pauses the collector around such bulk work, and freezes what
it loaded (`gc.freeze`), so that later passes skip the trajectory it keeps for its lifetime.
Reference counting still frees everything as usual.

    with collector_paused():
        events = list(reader.events())
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused(freeze_after: bool = False) -> Iterator[None]:
    """Collector off inside (also when nested or used from several threads at once); back to how
    it was when the outermost pause ends. `freeze_after`: move every object alive at the end into
    the permanent generation, which collections do not scan."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            if freeze_after:
                gc.freeze()
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
