# One image for the workers and the query API: `ragbus worker chunker|embedder|indexer` or `ragbus api`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# In a container /metrics must be reachable from Prometheus in another container or pod.
ENV RAGBUS_WORKER_METRICS_HOST=0.0.0.0 RAGBUS_WORKER_METRICS_PORT=9100 RAGBUS_API_HOST=0.0.0.0
WORKDIR /app
# CPU build of torch first, so the project's pin does not pull CUDA wheels.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY ragbus ragbus
COPY schemas schemas
COPY producers producers
COPY workers workers
COPY query_api query_api
RUN pip install --no-cache-dir . && useradd --uid 10001 ragbus
# The query API encodes questions with the model exported to ONNX: export it into the image, so no pod has to
# (the app directory is not writable by the ragbus user).
ENV RAGBUS_EMBED_ONNX_CACHE_DIR=/app/.ragbus/onnx
RUN python -c "from ragbus.embedding import SentenceEmbedder; from ragbus.settings import EmbeddingSettings; \
SentenceEmbedder(EmbeddingSettings(backend='onnx')).load()"
USER ragbus
EXPOSE 8000 9100
ENTRYPOINT ["ragbus"]
CMD ["api"]
