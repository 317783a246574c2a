"""freeze_startup_objects: what is alive after start-up leaves the collector's generations, and new garbage is
still collected."""

from __future__ import annotations

import os
import subprocess
import sys

# In a child process: a freeze is process-wide.
CHILD = """
import gc
from ragbus.heap import freeze_startup_objects
kept = [[i] for i in range(50_000)]
tracked_before = len(gc.get_objects())
frozen = freeze_startup_objects()
tracked_after = len(gc.get_objects())
cycle = []
cycle.append(cycle)
del cycle
print(tracked_before, frozen, tracked_after, gc.collect())
"""


def test_startup_objects_are_frozen_and_new_cycles_still_collected() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=dict(os.environ), capture_output=True, text=True, check=True
    )
    tracked_before, frozen, tracked_after, collected = (int(n) for n in out.stdout.split())
    assert frozen >= 50_000 and frozen >= tracked_before - 100
    assert tracked_after < 100, "a full collection no longer walks the start-up objects"
    assert collected >= 1, "garbage made after the freeze is collected as before"
