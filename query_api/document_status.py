"""Body of GET /v1/documents/{doc_id}: where one document of the caller's tenant stands."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ragbus.document_status import DocumentStatus


class VersionInFlight(BaseModel):
    """A version published but not yet searchable."""

    version: int
    stage: str = Field(description="The stage that has not finished it: extractor, chunker, embedder or indexer.")
    deleted: bool = Field(description="The version is a delete.")


class VersionArriving(BaseModel):
    """A version too large for one Kafka record, indexed part by part and not whole yet."""

    version: int
    chunks_indexed: int = Field(description="Its chunks in the index so far (searchable already).")
    chunks_total: int = Field(description="Its chunks in all; once all are in it replaces indexed_version.")


class DeadLetterOut(BaseModel):
    """Why a stage rejected the document's latest event."""

    stage: str
    version: int | None
    error_code: str
    error: str


class DocumentStatusOut(BaseModel):
    """What the index holds for a document, what is still on its way, and the last rejection."""

    doc_id: str
    indexed_version: int | None = Field(description="Version the index holds (a delete's, when deleted); null: none.")
    deleted: bool
    chunks: int = Field(description="Searchable chunks of the indexed version.")
    searchable_since: None = Field(None, description="Not recorded by the index: always null.")
    in_flight: list[VersionInFlight] = Field(description="Newer versions not committed yet by a stage, oldest first.")
    dead_letter: DeadLetterOut | None
    scan_capped: bool = Field(description="A stage's backlog was longer than the scan reads: in_flight may miss some.")
    arriving: VersionArriving | None = Field(
        None, description="A newer version arriving in parts (not whole yet); indexed_version is the whole one."
    )

    @classmethod
    def of(cls, status: DocumentStatus) -> DocumentStatusOut:
        """The public form of a core status."""
        letter = status.dead_letter
        return cls(
            doc_id=status.doc_id,
            indexed_version=status.indexed_version,
            deleted=status.deleted,
            chunks=status.chunks,
            in_flight=[VersionInFlight(version=f.version, stage=f.stage, deleted=f.deleted) for f in status.in_flight],
            dead_letter=DeadLetterOut(
                stage=letter.stage, version=letter.version, error_code=letter.error_code, error=letter.error
            )
            if letter
            else None,
            scan_capped=status.scan_capped,
            arriving=VersionArriving(
                version=arriving.version, chunks_indexed=arriving.indexed, chunks_total=arriving.total
            )
            if (arriving := status.arriving)
            else None,
        )
