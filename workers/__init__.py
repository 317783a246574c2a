"""The pipeline's consumers: chunker → embedder → indexer, each a FastStream app over aiokafka."""
