"""Versioned message contracts of every ragbus topic, and the topic names."""

from schemas.chunks import Chunk, ChunkedDocument
from schemas.codec import decode, encode
from schemas.dead_letter import DeadLetterHeaders
from schemas.documents import DocumentEvent, DocumentOp
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument
from schemas.errors import ContractError, UnsupportedSchemaVersion
from schemas.invalidation import CacheInvalidation
from schemas.topics import Topics

__all__ = [
    "CacheInvalidation",
    "Chunk",
    "ChunkedDocument",
    "ContractError",
    "DeadLetterHeaders",
    "DocumentEvent",
    "DocumentOp",
    "EmbeddedChunk",
    "EmbeddedDocument",
    "Topics",
    "UnsupportedSchemaVersion",
    "decode",
    "encode",
]
