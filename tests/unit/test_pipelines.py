"""Pipeline naming and contracts, and the replay command's input checks (no servers needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ragbus.errors import InputError
from ragbus.pipelines import PipelineContext, default_spec, with_spec
from ragbus.replay import ReplayFrom, parse_offsets
from ragbus.settings import load_settings
from schemas.codec import decode, encode
from schemas.pipelines import PipelineSpec, PipelineState
from schemas.topics import Lane, PipelineTopics, Topics, in_lane, lane_of


def spec(**overrides: object) -> PipelineSpec:
    fields: dict[str, object] = {
        "collection": "ragbus_chunks_v2",
        "state": PipelineState.BUILDING,
        "chunk_tokens": 128,
        "chunk_overlap": 16,
        "title_tokens": 24,
        "model": "all-MiniLM-L6-v2",
    }
    return PipelineSpec.model_validate(fields | overrides)


def test_the_default_pipeline_keeps_the_plain_names_and_a_reindex_gets_its_own() -> None:
    topics = Topics("acme")
    default, named = PipelineTopics(topics), PipelineTopics(topics, "acme_chunks_v2")
    assert (default.chunks, default.embedded, default.group("chunker")) == (
        "acme.chunks.v1",
        "acme.embedded.v1",
        "acme.chunker",
    )
    assert named.chunks == "acme.pipeline.acme_chunks_v2.chunks.v1"
    assert named.group("indexer") == "acme.pipeline.acme_chunks_v2.indexer"
    # Both replay the one source of truth; everything downstream of it is their own.
    assert default.input_topic("extractor") == named.input_topic("extractor") == "acme.documents.v1"
    assert named.input_topic("chunker") == named.extracted == "acme.pipeline.acme_chunks_v2.extracted.v1"
    assert named.input_topic("indexer") == named.embedded
    assert set(named.own_topics()).isdisjoint(default.own_topics())
    assert topics.pipelines in topics.compacted() and topics.pipelines in topics.all()


def test_a_pipeline_spec_round_trips_and_rejects_bad_names_and_chunking() -> None:
    original = spec()
    assert decode(encode(original), PipelineSpec) == original
    for bad_name in ["1starts_with_digit", "has-dash", "has space", 'quote"', ""]:
        with pytest.raises(ValidationError):
            spec(collection=bad_name)
    with pytest.raises(ValidationError, match="must be smaller than chunk tokens"):
        spec(chunk_tokens=32, chunk_overlap=32)
    moved = original.moved_to(PipelineState.SERVING)
    assert moved.state is PipelineState.SERVING and moved.updated_at >= original.updated_at


def test_a_registered_pipeline_overrides_chunking_and_model_for_its_workers() -> None:
    settings = load_settings()
    context = PipelineContext.of(settings, spec(model="/models/other"))
    assert context.collection == "ragbus_chunks_v2"
    assert (context.settings.chunking.tokens, context.settings.chunking.overlap) == (128, 16)
    assert context.settings.embedding.model == "/models/other"
    assert context.settings.worker.pipeline == "ragbus_chunks_v2"
    assert context.names.group("embedder") == "ragbus.pipeline.ragbus_chunks_v2.embedder"
    first = default_spec(settings)
    assert first.default and first.collection == settings.milvus.initial_collection
    assert PipelineContext.of(settings, first).names.group("chunker") == "ragbus.chunker"
    assert with_spec(settings, first).chunking == settings.chunking


def test_replay_targets_are_checked_before_anything_is_touched() -> None:
    assert parse_offsets(["0:12", "2:0"]) == {0: 12, 2: 0}
    for bad in ["0", "a:1", "1:-3", "1:", ":5"]:
        with pytest.raises(InputError, match="PARTITION:OFFSET"):
            parse_offsets([bad])
    with pytest.raises(InputError, match="exactly one"):
        ReplayFrom()
    with pytest.raises(InputError, match="exactly one"):
        ReplayFrom(beginning=True, offsets={0: 1})
    with pytest.raises(InputError, match="timezone"):
        ReplayFrom(timestamp=datetime(2026, 11, 25, 10, 0))
    assert ReplayFrom(timestamp=datetime(2026, 11, 25, 10, 0, tzinfo=UTC)).timestamp is not None


def test_each_laned_topic_has_a_bulk_twin_and_a_stage_forwards_into_its_own_lane() -> None:
    topics = Topics("acme")
    named = PipelineTopics(topics, "acme_chunks_v2")
    assert topics.document_topics() == ["acme.documents.v1", "acme.documents.bulk.v1"]
    assert set(topics.document_topics()) <= set(topics.compacted())  # both are sources of truth
    assert in_lane("acme.chunks.v1", Lane.BULK) == "acme.chunks.bulk.v1"
    assert in_lane("acme.chunks.bulk.v1", Lane.LIVE) == "acme.chunks.v1"
    assert in_lane("acme.dlq.chunker.v1", Lane.BULK) == "acme.dlq.chunker.v1"  # not laned
    assert lane_of("acme.pipeline.acme_chunks_v2.embedded.bulk.v1") is Lane.BULK
    # A reindex's extractor replays both documents topics into its own lanes.
    assert named.input_topics("extractor") == topics.document_topics()
    assert named.routes("extractor") == {
        "acme.documents.v1": "acme.pipeline.acme_chunks_v2.extracted.v1",
        "acme.documents.bulk.v1": "acme.pipeline.acme_chunks_v2.extracted.bulk.v1",
    }
    assert named.routes("indexer") == {}
    assert len(named.own_topics()) == 6 and set(named.own_topics()).isdisjoint(topics.all())
