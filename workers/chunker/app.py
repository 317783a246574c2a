"""Wiring of the chunker worker: `ragbus worker chunker`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from ragbus.embedding import ModelTokenizer
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.settings import Settings
from schemas.topics import Topics
from workers.chunker.chunking import TokenChunker
from workers.chunker.handlers import ChunkerHandler
from workers.runtime import build_stage_app


@asynccontextmanager
async def open_chunker(settings: Settings, producer: KafkaEventProducer) -> AsyncIterator[ChunkerHandler]:
    """The handler with its tokenizer loaded."""
    chunker = TokenChunker(ModelTokenizer.from_settings(settings.embedding), settings.chunking)
    yield ChunkerHandler(chunker, producer, Topics(settings.kafka.topic_prefix))


def create_app(settings: Settings) -> FastStream:
    """The chunker's FastStream app."""
    return build_stage_app("chunker", Topics(settings.kafka.topic_prefix).documents, settings, open_chunker)
