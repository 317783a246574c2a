"""Read-after-write of document states while another client flushes, with the flush serialized or not.

Why the indexer's sealer never flushes during a batch (workers/indexer/sealer.py): the indexer reads a document's
state, then writes the next one, and relies on reading back what it wrote. This harness does the same on a fresh
milvus-lite: states of `--docs` documents, each round picks 1 to 50 of them, reads their states (Strong) and checks
each against the last version written, then writes an intent and a settled state at a higher version, as the
applier does. Another client flushes the state collection every 0 to 0.3 s, and `--readers` more read states of
random documents all along (as the query API and `ragbus doc` do: without them stale reads were about ten times
rarer). In `overlapping` periods the flush runs
whenever it comes; in `serialized` periods a lock keeps it out of a round (the sealer's `between_flushes`). The
periods alternate, so both see the same machine load, after an unrecorded warm-up period (the first flushes
after the initial load).

    python -m bench.milvus_flush_reads [--periods 6] [--period-s 30] [--warmup-s 20] [--docs 1200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

from ragbus.milvus.document_states import DocumentState, MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import load_settings
from ragbus.stack.process import free_port
from ragbus.stack.servers import start_milvus_lite

RESULTS = Path(__file__).parent / "results"
COLLECTION = "flush_reads_chunks"


class Flusher(threading.Thread):
    """Flushes the state collection every 0 to 0.3 s; holds `lock` while it does, when serializing."""

    def __init__(self, states: MilvusDocumentStates, lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.states, self.lock = states, lock
        self.serialize, self.stopping, self.flushes = False, threading.Event(), 0

    def run(self) -> None:
        name = self.states.collection_for(COLLECTION)
        while not self.stopping.is_set():
            if self.serialize:
                with self.lock:
                    self.states.store.client.flush(name)
            else:
                self.states.store.client.flush(name)
            self.flushes += 1
            time.sleep(random.random() * 0.3)


class Reader(threading.Thread):
    """Reads the states of 200 random documents, again and again, on its own connection."""

    def __init__(self, states: MilvusDocumentStates, docs: int) -> None:
        super().__init__(daemon=True)
        self.states, self.docs, self.stopping = states, docs, threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            keys = random.sample(range(self.docs), min(200, self.docs))
            self.states.get(COLLECTION, [("default", str(k)) for k in keys])


def run_period(
    states: MilvusDocumentStates, truth: dict[str, int], flusher: Flusher, lock: threading.Lock, seconds: float
) -> dict[str, object]:
    """Rounds of read-check-write for `seconds`; the stale reads found."""
    stale: list[dict[str, int | str]] = []
    rounds, reads, flushes_before = 0, 0, flusher.flushes
    until = time.monotonic() + seconds
    version = max(truth.values())
    while time.monotonic() < until:
        rounds += 1
        version += 10
        keys = random.sample(sorted(truth), random.choice([1, 1, 1, 5, 50]))
        if flusher.serialize:
            lock.acquire()
        try:
            got = states.get(COLLECTION, [("default", k) for k in keys])
            reads += len(keys)
            for key in keys:
                if got[("default", key)].version != truth[key]:
                    stale.append({"doc": key, "read": got[("default", key)].version, "written": truth[key]})
            states.put(
                COLLECTION, [DocumentState("default", k, version, False, {truth[k]: 1, version: 1}) for k in keys]
            )
            states.put(COLLECTION, [DocumentState("default", k, version, False, {version: 1}) for k in keys])
            truth.update(dict.fromkeys(keys, version))
        finally:
            if flusher.serialize:
                lock.release()
    return {
        "flush": "serialized" if flusher.serialize else "overlapping",
        "seconds": seconds,
        "rounds": rounds,
        "states_read": reads,
        "flushes": flusher.flushes - flushes_before,
        "stale_reads": len(stale),
        "examples": stale[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=6, help="alternating periods, overlapping first")
    parser.add_argument("--period-s", type=float, default=30.0)
    parser.add_argument("--warmup-s", type=float, default=20.0, help="an unrecorded overlapping period first")
    parser.add_argument("--docs", type=int, default=1200)
    parser.add_argument("--readers", type=int, default=1, help="other clients reading states meanwhile")
    parser.add_argument("--out", type=Path, default=RESULTS / "milvus-flush-reads.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragbus-flush-reads-") as home:
        port = free_port()
        server = start_milvus_lite(Path(home), port)
        os.environ["RAGBUS_MILVUS_URI"] = f"http://127.0.0.1:{port}"
        settings = load_settings()
        store, flushing, *reading = (
            MilvusChunkStore(settings.milvus, settings.milvus_uri) for _ in range(2 + args.readers)
        )
        try:
            states = MilvusDocumentStates(store)
            states.ensure(COLLECTION)
            truth = {str(i): 1 for i in range(args.docs)}
            states.put(COLLECTION, [DocumentState("default", k, 1, False, {1: 1}) for k in truth])
            lock = threading.Lock()
            flusher = Flusher(MilvusDocumentStates(flushing), lock)
            flusher.start()
            readers = [Reader(MilvusDocumentStates(r), args.docs) for r in reading]
            for reader in readers:
                reader.start()
            warmup = run_period(states, truth, flusher, lock, args.warmup_s) if args.warmup_s > 0 else None
            periods = []
            for period in range(args.periods):
                flusher.serialize = period % 2 == 1
                periods.append(run_period(states, truth, flusher, lock, args.period_s))
                print(json.dumps({k: v for k, v in periods[-1].items() if k != "examples"}), flush=True)
            for thread in (flusher, *readers):
                thread.stopping.set()
                thread.join(timeout=10)
        finally:
            for client in (store, flushing, *reading):
                client.close()
            server.stop()
    totals = {
        mode: {
            key: sum(int(p[key]) for p in periods if p["flush"] == mode)  # type: ignore[call-overload]
            for key in ("rounds", "states_read", "flushes", "stale_reads")
        }
        for mode in ("overlapping", "serialized")
    }
    result = {
        "engine": "milvus-lite",
        "docs": args.docs,
        "readers": args.readers,
        "warmup": warmup,
        "periods": periods,
        "totals": totals,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(totals, indent=2))


if __name__ == "__main__":
    main()
