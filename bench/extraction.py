"""Extraction throughput: the extractor's work per document against the chosen library alone on the same files,
alternating rounds.

`python -m bench.extraction [--rounds 2] [--concurrency N] [--docx-ref REF]` writes bench/results/extraction.json.
Kafka is not part of it (one produce per document, measured by bench.kafka_hop); the ratio is the stage's own
overhead over the library. The series of a format run in a rotated order each round, and each series reports its
median round, in wall and in CPU seconds: the library alone, `parse` (the stage's format module alone, no object
store), `extractor` (the stage's batch path, `extract_batch`, N documents at a time, originals inline in their
events as the publisher sends every original up to RAGBUS_OBJECTS_INLINE_MAX_BYTES: the cache's two Redis round
trips per batch, the parse), `extractor stored` (the same with every original in a real SeaweedFS: the ledger's
requests and the original's read as well) and `extractor x1` (stored, one document at a time). Every stage round
starts on a fresh cache namespace and bucket: every extraction a cache miss. As in a worker, the event loop, the
Redis connection and the threads are made, and warmed by one unmeasured document, before a round's clock starts.
`--docx-ref` adds the Word module as it was at git REF to both (old and new in one run).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import docx
import pypdfium2 as pdfium
import trafilatura
from docx.text.paragraph import Paragraph
from pydantic import SecretStr

from ragbus.object_store import S3ObjectStore
from ragbus.redis_store import KeySpace, open_redis
from ragbus.settings import ExtractSettings, ObjectSettings, RedisSettings, WorkerSettings
from ragbus.stack.launcher import redis_reachable
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import S3_ACCESS_KEY, S3_SECRET_KEY, start_redis, start_seaweedfs
from schemas.documents import DocumentEvent, original_ref
from tests.documents.samples import docx_bytes, html_page, pdf_bytes
from workers.extractor import formats
from workers.extractor.batches import BatchExtractor, extract_batch
from workers.extractor.cache import ExtractionCache
from workers.extractor.extraction import DocumentExtractor
from workers.extractor.formats.types import Extraction

RESULTS = Path(__file__).parent / "results" / "extraction.json"
PDF, HTML, DOCX = (
    "application/pdf",
    "text/html",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
SENTENCE = "The harbour crane lifts granite blocks onto the barges while the keeper logs every ship at dawn. "


def corpus() -> dict[str, list[bytes]]:
    """10 PDFs of 20 pages, 40 web pages, 40 Word documents (4 sections of 3 paragraphs, a table of 6 rows)."""
    table = [["Ship", "Berth", "Cargo"]] + [[f"Vessel {r}", f"Quay {r}", "granite blocks"] for r in range(5)]
    return {
        PDF: [pdf_bytes([f"Report {d} page {p}. " + SENTENCE * 12 for p in range(20)]) for d in range(10)],
        HTML: [html_page(f"Post {d}", f"Post {d}", [f"{d}: " + SENTENCE * 4] * 8) for d in range(40)],
        DOCX: [
            docx_bytes(f"Doc {d}", {f"Part {s}": [SENTENCE * 4] * 3 for s in range(4)}, table=table) for d in range(40)
        ],
    }


def library_alone(media_type: str, data: bytes) -> None:
    """What the chosen library does for the same text, called directly: for Word every paragraph's and cell's text."""
    if media_type == PDF:
        document = pdfium.PdfDocument(data)
        for index in range(len(document)):
            document[index].get_textpage().get_text_bounded()
        document.close()
    elif media_type == HTML:
        trafilatura.extract(data.decode(), output_format="xml", with_metadata=True, include_tables=True,
                            include_comments=False, favor_precision=True)  # fmt: skip
    else:
        document = docx.Document(io.BytesIO(data))
        for part in document.iter_inner_content():
            # isinstance, not hasattr(part, "text"): hasattr evaluates the property, reading each paragraph twice
            _ = part.text if isinstance(part, Paragraph) else [c.text for r in part.rows for c in r.cells]


def docx_module_at(ref: str, folder: Path) -> Callable[[bytes], Extraction]:
    """The Word module's `extract` as it was at git `ref` (loaded from a copy, beside the current one)."""
    source = subprocess.run(["git", "show", f"{ref}:workers/extractor/formats/docx.py"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    path = folder / "docx_at_ref.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("docx_at_ref", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    extract: Callable[[bytes], Extraction] = module.extract
    return extract


Timing = tuple[float, float]  # wall seconds, CPU seconds of this process (every thread)


def timed(run: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def library_seconds(media_type: str, originals: list[bytes]) -> Timing:
    """One library-alone round."""
    return timed(lambda: [library_alone(media_type, data) for data in originals])


def parse_seconds(media_type: str, originals: list[bytes], word: Callable[[bytes], Extraction]) -> Timing:
    """One round of the stage's format module alone (no object store): what the stage adds to the library's parse."""
    parse = word if media_type == DOCX else partial(formats.extract, media_type)
    return timed(lambda: [parse(data) for data in originals])


def stage_seconds(
    port: int,
    redis_url: str,
    media_type: str,
    originals: list[bytes],
    word: Callable[[bytes], Extraction],
    concurrency: int,
    *,
    inline: bool,
) -> Timing:
    """One extractor round on a fresh bucket and cache namespace (every extraction a cache miss), Word files read
    by `word`: extract_batch on batches of RAGBUS_WORKER_MAX_RECORDS events, `concurrency` documents at a time,
    the originals inline in the events or stored in SeaweedFS."""
    settings = ObjectSettings(url=f"http://127.0.0.1:{port}", access_key=S3_ACCESS_KEY,
                              secret_key=S3_SECRET_KEY, bucket=f"b{uuid.uuid4().hex[:12]}")  # fmt: skip
    store = S3ObjectStore(settings, connections=concurrency + 1)
    store.ensure_bucket()
    events = []
    for number, data in enumerate(originals):
        if not inline:
            store.put_original(data, media_type)
        ref = original_ref(data, inline=inline)
        events.append(DocumentEvent(doc_id=f"d{number}", media_type=media_type, original=ref))
    extractor = BatchExtractor(DocumentExtractor(store, 50_000_000), concurrency)
    size = WorkerSettings().max_records

    # As in the worker, the event loop, the Redis connection and the threads outlive the batches: they are made,
    # and warmed by one document that is not measured, before the clock starts (a round is only 10 to 40 files).
    loop = asyncio.new_event_loop()
    redis = open_redis(RedisSettings(url=SecretStr(redis_url)))
    cache = ExtractionCache(redis, KeySpace(f"bench-{uuid.uuid4().hex[:12]}"), 3600)
    warm_up = events[0].model_copy(update={"doc_id": "warm-up"})

    async def batches() -> None:
        for at in range(0, len(events), size):
            await extract_batch(extractor, cache, events[at : at + size])

    current, formats.EXTRACTORS[DOCX] = formats.EXTRACTORS[DOCX], word
    try:
        loop.run_until_complete(extract_batch(extractor, cache, [warm_up]))
        return timed(lambda: loop.run_until_complete(batches()))
    finally:
        formats.EXTRACTORS[DOCX] = current
        loop.run_until_complete(redis.aclose())
        loop.close()
        extractor.close()
        store.close()


def main() -> None:
    """Alternate library-alone, parse and extractor rounds per format; report median units per second and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--docx-ref", default="", help="also time the Word module as it was at this git ref")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=ExtractSettings().concurrency,
        help="documents extracted at once (RAGBUS_EXTRACT_CONCURRENCY); the series `extractor x1` takes one at a time",
    )
    args = parser.parse_args()
    files = corpus()
    units = {PDF: 20 * len(files[PDF]), HTML: len(files[HTML]), DOCX: len(files[DOCX])}
    word = formats.EXTRACTORS[DOCX]
    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        servers: list[ManagedProcess] = [start_seaweedfs(Path(home), port)]
        redis_url = RedisSettings().url.get_secret_value()
        if not redis_reachable(redis_url):
            redis_port = free_port()
            servers.append(start_redis(Path(home), redis_port))
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        stage = partial(stage_seconds, port, redis_url)
        series: dict[str, dict[str, Callable[[], Timing]]] = {
            media_type: {
                "library": partial(library_seconds, media_type, originals),
                "parse": partial(parse_seconds, media_type, originals, word),
                "extractor": partial(stage, media_type, originals, word, args.concurrency, inline=True),
                "extractor stored": partial(stage, media_type, originals, word, args.concurrency, inline=False),
                "extractor x1": partial(stage, media_type, originals, word, 1, inline=False),
            }
            for media_type, originals in files.items()
        }
        if args.docx_ref:
            old = docx_module_at(args.docx_ref, Path(home))
            series[DOCX][f"parse@{args.docx_ref}"] = partial(parse_seconds, DOCX, files[DOCX], old)
            series[DOCX][f"extractor@{args.docx_ref}"] = partial(
                stage, DOCX, files[DOCX], old, args.concurrency, inline=True
            )
        walls: dict[str, dict[str, list[float]]] = {m: {n: [] for n in named} for m, named in series.items()}
        cpus: dict[str, dict[str, list[float]]] = {m: {n: [] for n in named} for m, named in series.items()}
        try:
            for round_number in range(args.rounds):
                for media_type, named in series.items():
                    order = list(named)
                    shift = round_number % len(order)  # rotate, so no series always runs first
                    for name in order[shift:] + order[:shift]:
                        wall, cpu = named[name]()
                        walls[media_type][name].append(wall)
                        cpus[media_type][name].append(cpu)
        finally:
            stop_all(servers, timeout_s=10)
    report: dict[str, object] = {"concurrency": args.concurrency, "rounds": args.rounds,
                                 "load_average": list(os.getloadavg())}  # fmt: skip
    for media_type, runs in walls.items():
        rates = {name: units[media_type] / statistics.median(times) for name, times in runs.items()}
        cpu = {name: statistics.median(times) for name, times in cpus[media_type].items()}
        ratios = {
            "ratio" if name == "extractor" else f"ratio {name}": round(rate / rates["library"], 3)
            for name, rate in rates.items()
            if name != "library"
        }
        cpu_ratios = {f"cpu ratio {name}": round(cpu["library"] / c, 3) for name, c in cpu.items() if name != "library"}
        unit = "pages/s" if media_type == PDF else "documents/s"
        summary = {"unit": unit, **{name: round(rate, 1) for name, rate in rates.items()}, **ratios, **cpu_ratios}
        print(media_type, summary)
        report[media_type] = {**summary, "seconds": runs, "cpu_seconds": cpus[media_type]}
    print("load average after:", os.getloadavg())
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
