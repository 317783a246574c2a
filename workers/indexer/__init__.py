"""Writes embedded chunks to Milvus, removes stale ones, announces the change."""
