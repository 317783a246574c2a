"""The dense search's parameters: the HNSW breadth only where set, and never below top_k."""

from __future__ import annotations

from ragbus.milvus.search import dense_params
from ragbus.settings import MilvusSettings


def test_the_search_breadth_is_set_only_where_configured_and_never_below_top_k() -> None:
    assert dense_params(MilvusSettings(), 10) == {"metric_type": "COSINE"}
    assert dense_params(MilvusSettings(search_ef=128), 10) == {"metric_type": "COSINE", "params": {"ef": 128}}
    assert dense_params(MilvusSettings(search_ef=8), 20) == {"metric_type": "COSINE", "params": {"ef": 20}}
