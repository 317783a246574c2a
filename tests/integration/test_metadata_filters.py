"""Metadata filters on both collection layouts, on the engine under test (milvus-lite, then the real engine).

New collections copy each metadata key into an md_<key> dynamic field and are filtered on those (milvus-lite
evaluates a JSON-path filter row by row in Python); collections made before keep the JSON-path filter.
"""

from __future__ import annotations

import pytest

from query_api.metadata_filter import metadata_filter
from ragbus.milvus.filters import Scalar
from ragbus.milvus.store import MilvusChunkStore
from tests.embedded_versions import DIM, apply, version
from workers.indexer.applier import VersionApplier

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize("metadata_fields", [True, False], ids=["md-fields", "json-path-only"])
def test_filters_match_the_same_documents_on_either_layout(
    chunk_store: MilvusChunkStore, scratch_collection: str, metadata_fields: bool
) -> None:
    store, collection = chunk_store, scratch_collection
    store.ensure_collection(collection, DIM, metadata_fields=metadata_fields)
    assert store.has_metadata_fields(collection) is metadata_fields
    tagged = {
        "lab.md": {"team": "lab", "level": 2, "public": True, "tags": ["a", "b"]},
        "ops.md": {"team": "ops", "level": 3, "public": False},
        "flags.md": {"team": "flags", "level": 1, "public": 1},  # 1, not true: no boolean filter matches it
        "plain.md": {},
        # Keys no filter can name stay in the JSON field alone; the document is indexed all the same.
        "odd.md": {"content-type": "text/plain", "naïve key": "x", "team": "docs", "empty": None},
    }
    docs = [
        version(1, 2, ("default", doc_id)).model_copy(update={"metadata": metadata})
        for doc_id, metadata in tagged.items()
    ]
    apply(VersionApplier(store, "indexer"), collection, *docs)
    vector = [1.0] + [0.0] * (DIM - 1)

    def found(filters: dict[str, Scalar | list[Scalar]]) -> set[str]:
        hits = store.search(vector, 10, "default", metadata_filter(filters), collection=collection)
        return {hit.doc_id for hit in hits}

    assert found({}) == set(tagged)
    assert found({"team": "lab"}) == {"lab.md"}
    assert found({"team": ["lab", "ops"], "level": 3}) == {"ops.md"}
    assert found({"public": False}) == {"ops.md"}
    assert found({"public": True}) == {"lab.md"}, "true is not 1"
    assert found({"public": 1}) == {"flags.md"}, "1 is not true"
    assert found({"level": 1}) == {"flags.md"}
    assert found({"team": 'lab" or tenant != "x'}) == set()
    assert found({"absent": "x"}) == set()
    assert found({"team": "docs"}) == {"odd.md"}
    # A string matches list metadata that holds it, on either layout; a list filter is any-of as ever.
    assert found({"tags": "a"}) == {"lab.md"}
    assert found({"tags": ["c", "b"]}) == {"lab.md"}
    assert found({"tags": "c"}) == set()
    assert store.search(vector, 10, "other", metadata_filter({"team": "lab"}), collection=collection) == []
