"""The embedded stack: real servers (tansu, SeaweedFS, milvus-lite, Redis) and the ragbus processes, started
and stopped by `ragbus up`, and by the test suite."""
