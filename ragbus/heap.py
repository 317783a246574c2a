"""Keep the garbage collector off the objects every process loads once and keeps (libraries, the model).

The API and the embedder load torch, transformers and the model: about 600,000 objects the collector tracks.
A full collection walks them all (a quarter to half a second on 2 cores), and it stalls whatever the process is
doing at that moment: every request in flight, or the embedding batch. `gc.freeze()` after start-up moves them
to a permanent generation that collections skip (the technique CPython added for pre-fork servers).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_objects() -> int:
    """Collect once, then exempt everything alive now from later collections; returns how many were frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("froze %d start-up objects out of garbage collection", frozen)
    return frozen
