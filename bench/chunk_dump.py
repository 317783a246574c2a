"""What the pipeline embeds for SciFact, chunk by chunk, so two versions of ragbus can be compared exactly.

    python -m bench.chunk_dump dump OUT.json                # this tree
    PYTHONPATH=/path/to/older/worktree python /path/to/this/bench/chunk_dump.py dump OLD.json
    python -m bench.chunk_dump compare OLD.json OUT.json

Each document goes the way the pipeline takes it to the chunker: through the extractor's plain-text path where the
tree has an extractor (issue #23), straight from the document event where it has none. Per document: its title, the
prefix embedded before every chunk, and each chunk's text, offsets and token count. Chunk ids are left out: they
carry the event's version, which the loader stamps from the clock. `compare` counts the documents that differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.scifact import load_scifact
from ragbus.embedding import ModelTokenizer
from ragbus.settings import load_settings
from workers.chunker.chunking import TokenChunker

FIELDS = ("index", "text", "start", "end", "token_count")


def dump(out: Path) -> None:
    """Chunk every SciFact document as this tree's pipeline does; write what is embedded."""
    settings = load_settings()
    chunker = TokenChunker(ModelTokenizer.from_settings(settings.embedding), settings.chunking)
    try:
        from schemas.extracted import plain_text_document
        from workers.extractor.cache import EXTRACTOR_VERSION

        extracted = True
    except ImportError:  # a tree from before the extractor: the chunker read document events
        extracted = False
    rows: list[dict[str, Any]] = []
    for event in load_scifact().documents:
        doc = plain_text_document(event, EXTRACTOR_VERSION) if extracted else event
        chunked = chunker.chunk(doc)
        rows.append(
            {
                "doc_id": chunked.doc_id,
                "title": chunked.title,
                "embed_prefix": chunked.embed_prefix,
                "chunks": [{name: getattr(chunk, name) for name in FIELDS} for chunk in chunked.chunks],
            }
        )
    out.write_text(json.dumps(rows))
    print(f"{len(rows)} documents, {sum(len(r['chunks']) for r in rows)} chunks -> {out}")


def compare(old: Path, new: Path) -> int:
    """How many documents are embedded differently in `new` than in `old` (0: the same input to the model)."""
    before = {row["doc_id"]: row for row in json.loads(old.read_text())}
    after = {row["doc_id"]: row for row in json.loads(new.read_text())}
    differing = sorted(doc for doc in before.keys() | after.keys() if before.get(doc) != after.get(doc))
    chunks = (sum(len(r["chunks"]) for r in before.values()), sum(len(r["chunks"]) for r in after.values()))
    print(f"documents {len(before)} / {len(after)}, chunks {chunks[0]} / {chunks[1]}, differing {len(differing)}")
    for doc in differing[:10]:
        print("  differs:", doc)
    return len(differing)


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dump").add_argument("out", type=Path)
    both = commands.add_parser("compare")
    both.add_argument("old", type=Path)
    both.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out)
    else:
        raise SystemExit(1 if compare(args.old, args.new) else 0)


if __name__ == "__main__":
    main()
