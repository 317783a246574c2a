"""EmbeddedStack: the servers ragbus needs (started unless their URL is set) plus the workers and the API."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import urllib.request
from urllib.parse import urlparse

import redis

from ragbus import local_llm
from ragbus.embedding import model_dimension
from ragbus.errors import ConfigError
from ragbus.kafka_clients import ensure_topics
from ragbus.milvus.store import MilvusChunkStore
from ragbus.reindex import Reindexer
from ragbus.settings import Settings
from ragbus.stack import servers
from ragbus.stack.endpoints import clear_endpoints, write_endpoints
from ragbus.stack.pipeline_supervisor import PipelineSupervisor
from ragbus.stack.process import ManagedProcess, free_port, require_free_port, stop_all
from ragbus.stack.scrape_targets import write_scrape_targets
from ragbus.stack.supervisor import ProcessSupervisor, RestartPolicy
from schemas.topics import Topics

log = logging.getLogger(__name__)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# LLM settings the API gets with the stack's local model, unless set: passages in the prompt (tokens of the
# embedding model's tokenizer) and the answer's length (its tokens).
LOCAL_LLM_DEFAULTS = {"max_context_tokens": 1000, "max_answer_tokens": 160}


def redis_reachable(url: str) -> bool:
    """True when a Redis server answers PING at `url`."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class EmbeddedStack:
    """Starts what is missing, in dependency order; `stop()` ends everything it started within ~10 s."""

    def __init__(self, settings: Settings, *, api: bool = True) -> None:
        self.settings = settings
        self.home = settings.stack.home.resolve()
        self.api = api
        self.servers: list[ManagedProcess] = []
        self.apps: list[ManagedProcess] = []
        self.env: dict[str, str] = {}
        self.pipelines: PipelineSupervisor | None = None
        stack = settings.stack
        policy = RestartPolicy(
            max_backoff_s=stack.restart_backoff_max_s,
            healthy_after_s=stack.restart_healthy_after_s,
            max_restarts=stack.restart_limit,
        )
        self.supervisor = ProcessSupervisor(policy, say=self._say)

    @property
    def api_url(self) -> str:
        """Base URL of the query API."""
        return f"http://{self.settings.api.host}:{self.settings.api.port}"

    # --- servers --------------------------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        print(message, flush=True)

    def start_servers(self) -> dict[str, str]:
        """Redis, Kafka and Milvus (each only where no URL points elsewhere); returns the env for children."""
        self.home.mkdir(parents=True, exist_ok=True)
        stack = self.settings.stack
        redis_url = self.settings.redis.url.get_secret_value()
        if not redis_reachable(redis_url):
            parsed = urlparse(redis_url)
            if parsed.hostname not in LOCAL_HOSTS:
                raise ConfigError(f"Redis at RAGBUS_REDIS_URL ({parsed.hostname}:{parsed.port}) is unreachable")
            port = parsed.port or 6379
            require_free_port(port, "RAGBUS_REDIS_URL", "Redis")
            self._say(f"starting redis-server on {port} ...")
            self.servers.append(servers.start_redis(self.home, port))
        else:
            self._say("using Redis at RAGBUS_REDIS_URL")

        bootstrap = self.settings.kafka.bootstrap
        # SeaweedFS holds the originals of documents unless RAGBUS_OBJECTS_URL points elsewhere, and the Kafka
        # log when the embedded broker keeps it on S3.
        objects_env = self._object_storage_env()
        need_s3 = not self.settings.objects.configured or (not bootstrap and stack.kafka_storage == "s3")
        if not bootstrap:  # checked first: a taken broker port fails before anything starts
            require_free_port(stack.kafka_port, "RAGBUS_STACK_KAFKA_PORT", "Kafka broker (tansu)")
        if need_s3:
            require_free_port(stack.s3_port, "RAGBUS_STACK_S3_PORT", "SeaweedFS S3 server")
            self._say(f"starting SeaweedFS (S3 on {stack.s3_port}) for originals of documents and the Kafka log ...")
            self.servers.append(servers.start_seaweedfs(self.home, stack.s3_port))
        if not bootstrap:
            require_free_port(stack.kafka_port, "RAGBUS_STACK_KAFKA_PORT", "Kafka broker (tansu)")
            self._say(f"starting tansu Kafka broker on {stack.kafka_port} ({stack.kafka_storage} storage) ...")
            self.servers.append(servers.start_tansu(self.home, stack.kafka_port, stack.kafka_storage, stack.s3_port))
            bootstrap = f"127.0.0.1:{stack.kafka_port}"

        milvus_uri = self.settings.milvus.uri
        if not milvus_uri:
            require_free_port(stack.milvus_port, "RAGBUS_STACK_MILVUS_PORT", "Milvus (milvus-lite)")
            self._say(f"starting milvus-lite on {stack.milvus_port} ...")
            self.servers.append(servers.start_milvus_lite(self.home, stack.milvus_port))
            milvus_uri = f"http://127.0.0.1:{stack.milvus_port}"

        self.env = {
            "RAGBUS_KAFKA_BOOTSTRAP": bootstrap,
            "RAGBUS_MILVUS_URI": milvus_uri,
            "RAGBUS_REDIS_URL": redis_url,
            "RAGBUS_API_URL": self.api_url,
            **objects_env,
            "HF_HUB_OFFLINE": "1",
            # The local demo answers without credentials unless RAGBUS_API_AUTH was set explicitly.
            "RAGBUS_API_AUTH": self.settings.api_security.auth
            if "auth" in self.settings.api_security.model_fields_set
            else "off",
            **self.start_llm(),
        }
        return self.env

    def start_llm(self) -> dict[str, str]:
        """The local LLM server (RAGBUS_STACK_LLM) unless RAGBUS_LLM_BASE_URL names one; the API's LLM settings."""
        stack, llm = self.settings.stack, self.settings.llm
        if llm.base_url:
            self._say("using the LLM at RAGBUS_LLM_BASE_URL")
            return {}
        if stack.llm == "off":
            return {}  # extractive answers
        model = local_llm.MODELS[stack.llm]
        port = stack.llm_port or free_port()
        require_free_port(port, "RAGBUS_STACK_LLM_PORT", "LLM server")
        path = local_llm.verified_model(self.home, model)
        self._say(f"starting llama-cpp-python server ({model.name}, SHA-256 verified) on {port} ...")
        server = servers.start_llama_server(
            self.home, port, path, model.name, chat_format=local_llm.write_chat_format(self.home, model),
            context_tokens=stack.llm_context_tokens, threads=stack.llm_threads, timeout_s=stack.start_timeout_s,
        )  # fmt: skip
        self.servers.append(server)
        env = {"RAGBUS_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1", "RAGBUS_LLM_MODEL": model.name}
        # A small model answers best from few passages, and briefly; explicit settings win.
        for name, value in LOCAL_LLM_DEFAULTS.items():
            if name not in llm.model_fields_set:
                env[f"RAGBUS_LLM_{name.upper()}"] = str(value)
        return env

    def _object_storage_env(self) -> dict[str, str]:
        """RAGBUS_OBJECTS_* of the embedded SeaweedFS, unless the environment names an object store."""
        if self.settings.objects.configured:
            return {}
        return {
            "RAGBUS_OBJECTS_URL": f"http://127.0.0.1:{self.settings.stack.s3_port}",
            "RAGBUS_OBJECTS_ACCESS_KEY": servers.S3_ACCESS_KEY,
            "RAGBUS_OBJECTS_SECRET_KEY": servers.S3_SECRET_KEY,
        }

    def prepare(self, settings: Settings) -> None:
        """Topics and the aliased collection, created before any worker starts (idempotent)."""
        topics = Topics(settings.kafka.topic_prefix)
        asyncio.run(ensure_topics(settings, topics.all(), compacted=topics.compacted()))
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            store.ensure_alias(settings.milvus.initial_collection, model_dimension(settings.embedding))
        finally:
            store.close()
        asyncio.run(Reindexer(settings).pipelines())  # registers the first pipeline

    # --- ragbus processes -----------------------------------------------------------------------------------

    def start_apps(self, settings: Settings) -> None:
        """The workers and the API as separate processes (the same commands production runs)."""
        if self.api:
            require_free_port(self.settings.api.port, "RAGBUS_API_PORT", "query API")
        logs = self.home / "logs"
        # Workers of every live pipeline: the first one, and any a reindex registered.
        self.pipelines = PipelineSupervisor(settings, self.env, logs)
        self.pipelines.sync()
        if self.api:
            self._say("starting query API ...")
            argv = [sys.executable, "-m", "ragbus", "api"]
            api = ManagedProcess("api", argv, logs / "api.log", self.env).start()
            self.apps.append(api)
            api.wait_ready(self._api_ready, timeout_s=self.settings.stack.start_timeout_s)
        write_endpoints(self.home, self.env)
        self.write_scrape_targets()

    def metrics_urls(self) -> dict[str, str]:
        """Where each running process serves Prometheus metrics: the API and every worker."""
        api = {"api": f"{self.api_url}/metrics/"} if self.api else {}
        return {**api, **(self.pipelines.metrics_urls() if self.pipelines else {})}

    def write_scrape_targets(self) -> None:
        """Refresh the file_sd targets Prometheus reads (infra/prometheus/prometheus-embedded.yml)."""
        workers = self.pipelines.metrics_urls() if self.pipelines else {}
        write_scrape_targets(self.home, self.api_url if self.api else None, workers)

    def _api_ready(self) -> bool:
        self.check_alive()
        with urllib.request.urlopen(f"{self.api_url}/readyz", timeout=5) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)

    def supervise(self) -> None:
        """Follow the pipelines registry: start the workers of a new reindex, stop those of a retired one."""
        if self.pipelines:
            try:
                self.pipelines.sync()
                self.write_scrape_targets()
            except Exception as exc:  # the registry is unreadable for a moment: keep what runs, retry later
                log.warning("could not read the pipelines registry: %s", exc)

    def check_alive(self) -> None:
        """Restart a worker or the API that exited (with backoff); ProcessFailed when a server exited or one of
        them crash-loops."""
        workers = self.pipelines.processes() if self.pipelines else []
        self.supervisor.check(self.servers, [*workers, *self.apps])

    def stop(self, timeout_s: float = 9.0) -> None:
        """Stop the ragbus processes first (they commit on the way out), then the servers."""
        started = time.monotonic()
        workers = self.pipelines.processes() if self.pipelines else []
        stop_all([*workers, *self.apps], timeout_s=timeout_s * 0.6)
        stop_all(self.servers, timeout_s=max(1.0, timeout_s - (time.monotonic() - started)))
        clear_endpoints(self.home)
        if self.home.exists():
            write_scrape_targets(self.home, None, {})  # Prometheus stops scraping what is gone
