"""Extraction throughput: the extractor's work per document (read the original from a real SeaweedFS, parse, cache
the text, record the hold) against the chosen library alone on the same files, alternating rounds.

`python -m bench.extraction [--rounds 2]` writes bench/results/extraction.json. Kafka is not part of it (one
produce per document, measured by bench.kafka_hop); the ratio is the stage's own overhead over the library.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docx
import pypdfium2 as pdfium
import trafilatura

from ragbus.object_store import S3ObjectStore
from ragbus.settings import ObjectSettings
from ragbus.stack.process import free_port, stop_all
from ragbus.stack.servers import S3_ACCESS_KEY, S3_SECRET_KEY, start_seaweedfs
from schemas.documents import DocumentEvent, original_ref
from tests.documents.samples import docx_bytes, html_page, pdf_bytes
from workers.extractor.extraction import DocumentExtractor

RESULTS = Path(__file__).parent / "results" / "extraction.json"
PDF, HTML, DOCX = (
    "application/pdf",
    "text/html",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
SENTENCE = "The harbour crane lifts granite blocks onto the barges while the keeper logs every ship at dawn. "


def corpus() -> dict[str, list[bytes]]:
    """10 PDFs of 20 pages, 40 web pages, 40 Word documents."""
    return {
        PDF: [pdf_bytes([f"Report {d} page {p}. " + SENTENCE * 12 for p in range(20)]) for d in range(10)],
        HTML: [html_page(f"Post {d}", f"Post {d}", [f"{d}: " + SENTENCE * 4] * 8) for d in range(40)],
        DOCX: [docx_bytes(f"Doc {d}", {f"Part {s}": [SENTENCE * 4] * 3 for s in range(4)}) for d in range(40)],
    }


def library_alone(media_type: str, data: bytes) -> None:
    """What the chosen library does for the same text, called directly."""
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
            _ = part.text if hasattr(part, "text") else [c.text for r in part.rows for c in r.cells]


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    """Alternate library-alone and extractor rounds per format; report units per second and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    files = corpus()
    units = {PDF: 20 * len(files[PDF]), HTML: len(files[HTML]), DOCX: len(files[DOCX])}
    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        server = start_seaweedfs(Path(home), port)
        try:
            seconds: dict[str, dict[str, list[float]]] = {m: {"library": [], "extractor": []} for m in files}
            for _ in range(args.rounds):
                for media_type, originals in files.items():
                    seconds[media_type]["library"].append(
                        timed(lambda: [library_alone(media_type, d) for d in originals])  # noqa: B023
                    )
                    settings = ObjectSettings(url=f"http://127.0.0.1:{port}", access_key=S3_ACCESS_KEY,
                                              secret_key=S3_SECRET_KEY, bucket=f"b{uuid.uuid4().hex[:12]}")  # fmt: skip
                    store = S3ObjectStore(settings)
                    store.ensure_bucket()
                    events = []
                    for number, data in enumerate(originals):  # a fresh bucket: every extraction is a cache miss
                        store.put_original(data, media_type)
                        events.append(DocumentEvent(doc_id=f"d{number}", media_type=media_type,
                                                    original=original_ref(data)))  # fmt: skip
                    extractor = DocumentExtractor(store, 50_000_000)
                    seconds[media_type]["extractor"].append(
                        timed(lambda: [extractor.extract(e) for e in events])  # noqa: B023
                    )
                    store.close()
        finally:
            stop_all([server], timeout_s=10)
    report = {}
    for media_type, runs in seconds.items():
        library = units[media_type] / (sum(runs["library"]) / len(runs["library"]))
        stage = units[media_type] / (sum(runs["extractor"]) / len(runs["extractor"]))
        unit = "pages/s" if media_type == PDF else "documents/s"
        report[media_type] = {"unit": unit, "library": round(library, 1), "extractor": round(stage, 1),
                              "ratio": round(stage / library, 3), "seconds": runs}  # fmt: skip
        print(f"{media_type}: library {library:.1f} {unit}, extractor {stage:.1f} {unit}, ratio {stage / library:.3f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
