"""All Milvus access of ragbus, one job per module; imports point down this list, never up.

- `filters`: metadata filters and string literals rendered as Milvus expressions.
- `bm25`: the BM25 sparse field of hybrid retrieval, and the probe that asks a server whether it has it.
- `failures`: Milvus and gRPC failures mapped to transient, permanent and configuration errors.
- `connection`: the client (TLS options, gRPC keepalive), one call with its failures mapped, the alias's target.
- `schema`: the chunk collection's schema, creating a collection if missing, what a collection's layout holds.
- `rows`: chunk rows written and search hits read.
- `document_states`: the last applied version of every document (`MilvusDocumentStates`).
- `collections`: creating the chunk collection with its states and the alias; reindex administration.
- `writes`: upserting and deleting chunks. `search`: dense and hybrid search, and counting reads.
- `store`: `MilvusChunkStore`, the one object callers hold, composing the modules above.
"""
