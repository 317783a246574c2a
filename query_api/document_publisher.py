"""REST-side publishing of document events: one producer per API process, started on first use."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request

from producers.publisher import to_message
from ragbus.kafka_clients import KafkaEventProducer, ensure_topics
from ragbus.settings import Settings
from schemas.documents import DocumentEvent
from schemas.topics import Topics


class RestDocumentPublisher:
    """Publishes events with the same keys, headers and size checks as `ragbus publish`.

    The producer starts lazily, so a Kafka outage fails document requests (503) without stopping queries.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka.topic_prefix)
        self._producer: KafkaEventProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> KafkaEventProducer:
        async with self._lock:
            if self._producer is None:
                await ensure_topics(self.settings, self.topics.all(), compacted=self.topics.compacted())
                self._producer = await KafkaEventProducer(self.settings).start()
            return self._producer

    async def publish(self, events: Sequence[DocumentEvent]) -> None:
        """Send every event and return once the broker acknowledged all (InputError if one is too large)."""
        messages = [to_message(e, self.topics.documents, self.settings.kafka.max_message_bytes) for e in events]
        producer = await self._started()
        await producer.send_all(messages)

    async def close(self) -> None:
        """Flush and stop the producer, if it was started."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def get_publisher(request: Request) -> RestDocumentPublisher:
    """The lifespan's publisher."""
    publisher: RestDocumentPublisher = request.app.state.documents
    return publisher


PublisherDep = Annotated[RestDocumentPublisher, Depends(get_publisher)]
