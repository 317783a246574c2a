"""Zero-downtime reindexing: build a new collection from the log, switch the alias when caught up, roll back, prune.

The documents topic is the source of truth. A reindex registers a new pipeline (its own intermediate topics and
consumer groups, its own collection); its workers replay the documents topic from the beginning and keep applying
live updates. Once every stage has zero lag and the new collection holds as many live documents as the served one,
the alias moves in one atomic Milvus call; query-cache keys name the collection behind the alias, so no answer
cached from the old collection is served after the switch.
The previous pipeline keeps running (its collection stays current) until `prune`, so a rollback is one alias move.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from ragbus.embedding import model_dimension
from ragbus.errors import InputError, TransientError
from ragbus.kafka_clients import start_client
from ragbus.kafka_security import kafka_connection
from ragbus.milvus.collections import MilvusCollectionAdmin
from ragbus.milvus.store import MilvusChunkStore
from ragbus.pipelines import PipelineContext, PipelineRegistry, default_spec, with_spec
from ragbus.redis_store import IndexGeneration, KeySpace, open_redis
from ragbus.reindex_progress import PipelineProgress, eta_seconds, measure
from ragbus.settings import Settings
from schemas.pipelines import PipelineSpec, PipelineState
from schemas.topics import PipelineTopics, Topics

log = logging.getLogger(__name__)
ProgressCallback = Callable[[PipelineProgress, float | None], None]


@dataclass(frozen=True)
class ReindexOptions:
    """What changes in the new pipeline; None keeps the serving pipeline's value."""

    chunk_tokens: int | None = None
    chunk_overlap: int | None = None
    title_tokens: int | None = None
    model: str | None = None
    collection: str | None = None


class Reindexer:
    """Runs the reindex lifecycle against the registry, Milvus, Redis and Kafka of one deployment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = PipelineRegistry(settings)

    # --- registry views -----------------------------------------------------------------------------------

    async def pipelines(self) -> dict[str, PipelineSpec]:
        """Every registered pipeline; the default one is registered on first use."""
        specs = await self.registry.load()
        if not any(s.default for s in specs.values()):
            spec = default_spec(self.settings)
            await self.registry.put(spec)
            specs[spec.collection] = spec
        return specs

    async def in_state(self, state: PipelineState) -> list[PipelineSpec]:
        """Pipelines in `state`, most recently changed first."""
        specs = [s for s in (await self.pipelines()).values() if s.state is state]
        return sorted(specs, key=lambda s: s.updated_at, reverse=True)

    def context(self, spec: PipelineSpec) -> PipelineContext:
        """What the pipeline's workers use."""
        return PipelineContext.of(self.settings, spec)

    # --- start, follow, switch ------------------------------------------------------------------------------

    async def start(self, options: ReindexOptions) -> PipelineSpec:
        """Register a new pipeline and create its collection; its workers then replay the documents topic."""
        if building := await self.in_state(PipelineState.BUILDING):
            raise InputError(
                f"a reindex into {building[0].collection} is in progress: `ragbus reindex` resumes it, "
                "`ragbus reindex --abandon` drops it"
            )
        serving = (await self.in_state(PipelineState.SERVING) or [default_spec(self.settings)])[0]
        known = await self.pipelines()
        with self._store() as store:
            admin = MilvusCollectionAdmin(store)
            # Never reuse a name, not even one retired: its old topics or consumer groups may still exist.
            versions = admin.versions(known)
            collection = options.collection or f"{self.settings.milvus.alias}_v{max(versions, default=1) + 1}"
            if admin.exists(collection) or collection in known:
                raise InputError(f"collection {collection} already exists; choose another --name")
            try:
                spec = PipelineSpec(
                    collection=collection,
                    state=PipelineState.BUILDING,
                    chunk_tokens=_pick(options.chunk_tokens, serving.chunk_tokens),
                    chunk_overlap=_pick(options.chunk_overlap, serving.chunk_overlap),
                    title_tokens=_pick(options.title_tokens, serving.title_tokens),
                    model=options.model or serving.model,
                    previous=store.alias_target(),
                )
            except ValidationError as exc:
                raise InputError(f"invalid reindex options: {_first_error(exc)}") from None
            dim = await asyncio.to_thread(model_dimension, with_spec(self.settings, spec).embedding)
            await asyncio.to_thread(store.ensure_collection, collection, dim)
        await self.registry.put(spec)
        log.info("reindex started into %s", collection)
        return spec

    async def follow(
        self, spec: PipelineSpec, *, timeout_s: float, poll_s: float = 1.0, on_progress: ProgressCallback | None = None
    ) -> PipelineProgress:
        """Wait until the pipeline has caught up with the log (TransientError after `timeout_s`)."""
        pipeline = self.context(spec)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        first = progress = await measure(pipeline)
        while True:
            if on_progress:
                on_progress(progress, eta_seconds(first, progress))
            if progress.caught_up:
                return progress
            if loop.time() > deadline:
                raise TransientError(
                    f"{spec.collection} has not caught up after {timeout_s:.0f}s ({progress.render()}); are its "
                    f"workers running? (`ragbus up` runs them; elsewhere `ragbus worker <stage> --pipeline "
                    f"{spec.collection}`). `ragbus reindex` resumes."
                )
            await asyncio.sleep(poll_s)
            progress = await measure(pipeline)

    async def verify(self, spec: PipelineSpec) -> str | None:
        """None when the new collection holds every live document the served one does, else what differs."""
        with self._store() as store:
            admin = MilvusCollectionAdmin(store)
            served = store.alias_target()
            new = await asyncio.to_thread(admin.live_documents, spec.collection)
            if served is None or served == spec.collection:
                return None
            old = await asyncio.to_thread(admin.live_documents, served)
        if new < old:
            return f"{spec.collection} holds {new} live documents, the served {served} holds {old}"
        return None

    async def switch(self, spec: PipelineSpec) -> None:
        """Serve the pipeline's collection: atomic alias move, cache generation bump, registry update."""
        with self._store() as store:
            admin = MilvusCollectionAdmin(store)
            await asyncio.to_thread(admin.switch_alias, spec.collection)
        await self._bump_generation()
        await self._record_serving(spec)

    async def finish(
        self, spec: PipelineSpec, *, timeout_s: float, verify_for_s: float = 60.0, on_progress: ProgressCallback | None
    ) -> PipelineProgress:
        """Follow until caught up and verified (retrying while live updates land), then switch."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        verify_deadline: float | None = None
        while True:
            progress = await self.follow(spec, timeout_s=max(1.0, deadline - loop.time()), on_progress=on_progress)
            problem = await self.verify(spec)
            if problem is None:
                await self.switch(spec)
                return progress
            # Live updates reach the two collections at slightly different times: give them a moment to agree.
            verify_deadline = verify_deadline or loop.time() + verify_for_s
            if loop.time() > min(deadline, verify_deadline):
                raise InputError(f"not switching: {problem}; see `ragbus dlq list`, or switch with --force")
            log.info("caught up but not verified yet (%s); waiting", problem)
            await asyncio.sleep(1.0)

    # --- rollback, prune, abandon ---------------------------------------------------------------------------

    async def rollback(self) -> PipelineSpec:
        """Serve again the collection that served before (kept current by its pipeline)."""
        standby = await self.in_state(PipelineState.STANDBY)
        if not standby:
            raise InputError("nothing to roll back to: no previous collection is kept (was it pruned?)")
        await self.switch(standby[0])
        return standby[0]

    async def abandon(self) -> PipelineSpec:
        """Give up the reindex in progress; what is served is untouched."""
        building = await self.in_state(PipelineState.BUILDING)
        if not building:
            raise InputError("no reindex is in progress")
        await self._retire(building[0])
        return building[0]

    async def prune(self) -> list[PipelineSpec]:
        """Retire every standby pipeline: its workers stop, its collection and topics are dropped."""
        standby = await self.in_state(PipelineState.STANDBY)
        for spec in standby:
            await self._retire(spec)
        return standby

    # --- internals ------------------------------------------------------------------------------------------

    async def _record_serving(self, spec: PipelineSpec) -> None:
        updates = [spec.moved_to(PipelineState.SERVING)]
        for other in await self.in_state(PipelineState.SERVING):
            if other.collection != spec.collection:
                updates.append(other.moved_to(PipelineState.STANDBY))
        await self.registry.put(*updates)
        log.info("serving %s", spec.collection)

    async def _retire(self, spec: PipelineSpec) -> None:
        await self.registry.put(spec.moved_to(PipelineState.RETIRED))
        with self._store() as store:
            await asyncio.to_thread(MilvusCollectionAdmin(store).drop, spec.collection)
        if not spec.default:
            await self._delete_topics(PipelineTopics(Topics(self.settings.kafka.topic_prefix), spec.collection))
        log.info("retired %s", spec.collection)

    async def _delete_topics(self, names: PipelineTopics) -> None:
        admin = AIOKafkaAdminClient(**kafka_connection(self.settings))
        await start_client(self.settings, admin)
        try:
            await admin.delete_topics(names.own_topics())
        except Exception as exc:  # best effort: a leftover topic costs disk, not correctness
            log.warning("could not delete topics %s: %s", names.own_topics(), exc)
        finally:
            await admin.close()

    async def _bump_generation(self) -> None:
        redis = open_redis(self.settings.redis)
        try:
            keys = KeySpace(self.settings.redis.namespace)
            await IndexGeneration(redis, keys, self.settings.milvus.alias).bump()
        finally:
            await redis.aclose()

    @contextmanager
    def _store(self) -> Iterator[MilvusChunkStore]:
        store = MilvusChunkStore(self.settings.milvus, self.settings.milvus_uri)
        try:
            yield store
        finally:
            store.close()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value
