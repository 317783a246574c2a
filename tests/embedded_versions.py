"""Embedded document versions made up for the indexer's write tests (random unit vectors), and applying them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np

from schemas.chunks import chunk_id_for
from schemas.documents import DocumentOp
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument, pack_vector
from workers.indexer.applier import VersionApplier

DIM = 384


def version(number: int, chunks: int, doc: tuple[str, str]) -> EmbeddedDocument:
    """An upsert of `doc` at `number` with `chunks` chunks (random unit vectors)."""
    tenant, doc_id = doc
    rng = np.random.default_rng(number)
    parts = []
    for index in range(chunks):
        vector = rng.standard_normal(DIM).astype(np.float32)
        text = f"version {number} part {index}"
        parts.append(
            EmbeddedChunk(
                chunk_id=chunk_id_for(tenant, doc_id, number, index),
                index=index,
                text=text,
                start=0,
                end=len(text),
                token_count=4,
                vector=pack_vector(vector / np.linalg.norm(vector)),
            )
        )
    return EmbeddedDocument(
        event_id=uuid.uuid4().hex,
        op=DocumentOp.UPSERT,
        doc_id=doc_id,
        tenant=tenant,
        version=number,
        produced_at=datetime.now(UTC),
        model="all-MiniLM-L6-v2",
        dim=DIM,
        chunks=parts,
    )


def deletion(number: int, doc: tuple[str, str]) -> EmbeddedDocument:
    """A delete of `doc` at `number`."""
    return version(number, 0, doc).model_copy(update={"op": DocumentOp.DELETE})


def apply(applier: VersionApplier, collection: str, *docs: EmbeddedDocument) -> list[EmbeddedDocument]:
    """What the indexer does with a batch: drop the stale versions, apply the rest; returns those applied."""
    fresh, known = applier.fresh(collection, list(docs))
    if fresh:
        applier.apply(collection, fresh, known)
    return fresh
