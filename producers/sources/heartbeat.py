"""A running source announces itself on the sources topic: a SourceHeartbeat every HEARTBEAT_INTERVAL_S, and a
tombstone when it stops (`ragbus status` lists what is there)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ragbus.errors import TransientError
from ragbus.kafka_clients import OutboundMessage, ensure_topics
from schemas.codec import encode
from schemas.fields import utc_now
from schemas.sources import HEARTBEAT_INTERVAL_S, SourceHeartbeat
from schemas.topics import Topics

if TYPE_CHECKING:
    from producers.sources.runtime import SourceRun

log = logging.getLogger(__name__)


class Heartbeat:
    """Writes the source's SourceHeartbeat every HEARTBEAT_INTERVAL_S, and a tombstone when it stops."""

    def __init__(self, run: SourceRun, follows: str) -> None:
        self.run, self.follows = run, follows
        self.topic = Topics(run.settings.kafka.topic_prefix).sources
        self.key = f"{socket.gethostname()}:{os.getpid()}".encode()
        self.started = utc_now()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Announce now, then keep announcing in the background."""
        await ensure_topics(self.run.settings, [self.topic], compacted=[self.topic])
        await self._send()
        self._task = asyncio.create_task(self._loop())

    async def _send(self) -> None:
        run = self.run
        beat = SourceHeartbeat(
            source=run.name,
            instance=self.key.decode(),
            follows=self.follows,
            started_at=self.started,
            seen_at=utc_now(),
            events=run.events,
            last_change_at=datetime.fromtimestamp(run.last_change, UTC) if run.last_change else None,
        )
        await run.producer.send_all([OutboundMessage(self.topic, self.key, encode(beat))])

    async def _loop(self) -> None:
        while not await self.run.sleep(HEARTBEAT_INTERVAL_S):
            try:
                await self._send()
            except TransientError as exc:  # a missed heartbeat only makes the source look stale for a while
                log.warning("%s: heartbeat not delivered: %s", self.run.name, exc)

    async def stop(self) -> None:
        """Stop announcing and remove the source from the topic."""
        if self._task:
            self._task.cancel()
        with contextlib.suppress(TransientError):
            await self.run.producer.send_all([OutboundMessage(self.topic, self.key, None)])
