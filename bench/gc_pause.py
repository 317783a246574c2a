"""How long a full garbage collection stalls a process that loaded the model, before and after the start-up freeze.

    python -m bench.gc_pause

In a child process, as the query API and the embedder start: import the API, load the embedding model, then time
full collections (`gc.collect()`), call `ragbus.heap.freeze_startup_objects()`, and time them again. A full
collection also runs on its own whenever enough objects have outlived two younger collections, and it stalls every
request in flight for its whole length. Writes bench/results/gc-pause.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

from bench.stack import ROOT

CHILD = """
import gc, json, time
import query_api.app
from ragbus.embedding import SentenceEmbedder
from ragbus.heap import freeze_startup_objects
from ragbus.settings import EmbeddingSettings
embedder = SentenceEmbedder(EmbeddingSettings()).load()
embedder.encode(["warm the model up"])

def pauses_ms():
    out = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        out.append(round((time.perf_counter() - started) * 1000, 2))
    return sorted(out)

tracked = len(gc.get_objects())
before = pauses_ms()
frozen = freeze_startup_objects()
after = pauses_ms()
print(json.dumps({"tracked_objects": tracked, "frozen_objects": frozen, "full_collection_ms_before": before,
                  "full_collection_ms_after": after}))
"""


def main() -> None:
    """Run the child and record what it measured."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result |= {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores, {platform.machine()}"}
    path = ROOT / "bench" / "results" / "gc-pause.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
