"""Wiring of the chunker worker: `ragbus worker chunker`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from ragbus.embedding import ModelTokenizer
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.pipelines import PipelineContext
from workers.chunker.chunking import TokenChunker
from workers.chunker.handlers import ChunkerHandler
from workers.runtime import build_stage_app


@asynccontextmanager
async def open_chunker(pipeline: PipelineContext, producer: KafkaEventProducer) -> AsyncIterator[ChunkerHandler]:
    """The handler with its tokenizer loaded."""
    settings = pipeline.settings
    chunker = TokenChunker(ModelTokenizer.from_settings(settings.embedding), settings.chunking)
    yield ChunkerHandler(chunker, producer, pipeline.names.routes("chunker"))


def create_app(pipeline: PipelineContext) -> FastStream:
    """The chunker's FastStream app."""
    return build_stage_app("chunker", pipeline, open_chunker)
