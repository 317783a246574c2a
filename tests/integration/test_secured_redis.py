"""Redis as production runs it: a 3-master Redis Cluster and a standalone server with an ACL user and password.

Every server is started by the test from Debian's redis-server on spare ports (the machine's Redis is untouched).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from query_api.app import create_app
from query_api.cache import CacheKeys, QueryCache
from query_api.errors import RateLimited
from query_api.feedback import FeedbackRequest, FeedbackStore
from query_api.models import Citation, QueryResponse
from query_api.rate_limit import RedisRateLimiter
from ragbus.redis_store import KeySpace, RedisEmbeddingCache, open_redis
from ragbus.settings import RedisSettings, load_settings
from ragbus.stack.process import ManagedProcess, free_port, port_in_use, stop_all
from schemas.documents import DocumentEvent
from tests.pipeline_helpers import ask, publish, wait_indexed
from tests.stack_fixtures import environment, pipeline_env, running_pipeline, wait_for
from tests.tls_certs import make_tls_files

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs Debian's redis-server and redis-cli"),
]
ACL_PASSWORD = "acl-pw-7f3a9c"


def _redis_server(home: Path, name: str, port: int, *args: str) -> ManagedProcess:
    data = home / name
    data.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", "", *args]
    process = ManagedProcess(name, argv, home / "logs" / f"{name}.log", {}).start()
    process.wait_ready(lambda: _answers(port), timeout_s=20)
    return process


def _answers(port: int) -> bool:
    try:
        redis.Redis(port=port, socket_timeout=1).ping()
    except redis.AuthenticationError:
        return True
    except (redis.ConnectionError, redis.ResponseError) as exc:
        return "NOAUTH" in str(exc)
    return True


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Three masters, slots spread by redis-cli --cluster create; yields a URL of one node."""
    home = tmp_path_factory.mktemp("redis-cluster")
    ports = [free_port() for _ in range(3)]
    started = []
    try:
        for port in ports:
            node = f"node{port}"
            # The bus port is given: the default (port + 10000) overflows for a high spare port.
            cluster = ["--cluster-enabled", "yes", "--cluster-config-file", f"{node}.conf"]
            started.append(_redis_server(home, node, port, *cluster, "--cluster-port", str(free_port())))
        nodes = [f"127.0.0.1:{p}" for p in ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        clients = [redis.Redis(port=p, socket_timeout=1) for p in ports]
        wait_for(
            lambda: all("ok" in str(c.execute_command("CLUSTER INFO")) for c in clients),
            timeout_s=30,
            message="cluster_state:ok on every node",
        )
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        stop_all(started, timeout_s=10)


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A standalone server whose default user is off and whose only user is `ragbus` with a password."""
    home = tmp_path_factory.mktemp("redis-acl")
    port = free_port()
    # The rule set docs/production.md recommends, for the namespace `acltest`.
    rules = ["~acltest:*", "&*", "+@read", "+@write", "+@scripting", "+ping", "+info"]
    argv = ["--user", "default", "off", "--user", "ragbus", "on", f">{ACL_PASSWORD}", *rules]
    process = _redis_server(home, "redis-acl", port, *argv)
    try:
        yield port
    finally:
        stop_all([process], timeout_s=10)


def _cluster_settings(url: str) -> RedisSettings:
    with environment({"RAGBUS_REDIS_URL": url, "RAGBUS_REDIS_CLUSTER": "true"}):
        return RedisSettings()


def test_embedding_cache_on_a_three_master_cluster(redis_cluster: str) -> None:
    async def scenario() -> tuple[list[np.ndarray | None], list[np.ndarray | None], set[int]]:
        client = open_redis(_cluster_settings(redis_cluster))
        try:
            cache = RedisEmbeddingCache(client, KeySpace("clustertest"), "model-a", ttl_s=600)
            texts = [f"passage number {i}" for i in range(40)]
            before = await cache.get_many(texts)
            await cache.put_many(texts[:30], np.arange(30 * 4, dtype="<f4").reshape(30, 4))
            after = await cache.get_many(texts)
            assert isinstance(client, redis.asyncio.RedisCluster)
            slots = {int(await client.cluster_keyslot(cache.keys.embedding("model-a", t))) for t in texts}
            return before, after, slots
        finally:
            await client.aclose()

    before, after, slots = asyncio.run(scenario())
    assert before == [None] * 40
    assert len(slots) > 30  # the keys really are spread over the cluster, not on one node
    for i in range(30):
        np.testing.assert_array_equal(after[i], np.arange(i * 4, i * 4 + 4, dtype="<f4"))
    assert after[30:] == [None] * 10


def _answer() -> QueryResponse:
    return QueryResponse(
        answer="Otters hold hands.",
        citations=[Citation(doc_id="otter", chunk_id="otter:1:0", title="Otters", text="...", score=0.9)],
        cached=False,
        degraded=False,
    )


def test_query_cache_entry_and_invalidation_on_a_cluster(redis_cluster: str) -> None:
    response = _answer()

    async def scenario() -> tuple[bool, bool, int, bool, bool]:
        client = open_redis(_cluster_settings(redis_cluster))
        try:
            cache = QueryCache(client, CacheKeys("clustertest", "chunks"), ttl_s=300)
            slot, _ = await cache.lookup("tenant-a", "Do otters hold hands?", "k=5")
            stored = await cache.put(slot, response)
            hit = (await cache.lookup("tenant-a", "do otters  hold hands?", "k=5"))[1] is not None
            other_tenant = (await cache.lookup("tenant-b", "Do otters hold hands?", "k=5"))[1] is None
            dropped = await cache.invalidate("tenant-a", "otter", upsert=False)
            gone = (await cache.lookup("tenant-a", "Do otters hold hands?", "k=5"))[1] is None
            return stored, hit, dropped, other_tenant, gone
        finally:
            await client.aclose()

    stored, hit, dropped, other_tenant, gone = asyncio.run(scenario())
    assert stored and hit and other_tenant
    assert dropped >= 1
    assert gone


def test_acl_user_with_password_and_a_wrong_password(acl_redis: int, tmp_path: Path) -> None:
    secret_file = tmp_path / "redis-password"
    secret_file.write_text(ACL_PASSWORD + "\n")
    env = {
        "RAGBUS_REDIS_URL": f"redis://127.0.0.1:{acl_redis}/0",
        "RAGBUS_REDIS_USERNAME": "ragbus",
        "RAGBUS_REDIS_PASSWORD_FILE": str(secret_file),
    }
    with environment(env):
        good = RedisSettings()
    with environment({**env, "RAGBUS_REDIS_PASSWORD": "not-the-password-91b2"}):
        wrong = RedisSettings()

    async def scenario() -> tuple[int, str]:
        client = open_redis(good)
        try:
            cache = RedisEmbeddingCache(client, KeySpace("acltest"), "m", ttl_s=600)
            await cache.put_many(["a"], np.ones((1, 3), dtype="<f4"))
            found = await cache.get_many(["a"])
            answers = QueryCache(client, CacheKeys("acltest", "chunks"), ttl_s=300)
            slot, _ = await answers.lookup("t", "acl query", "k=5")
            assert await answers.put(slot, _answer())  # Lua scripts allowed by +@scripting
            assert await answers.get(slot) is not None
        finally:
            await client.aclose()
        refused = open_redis(wrong)
        try:
            with pytest.raises(redis.AuthenticationError) as info:
                await refused.ping()
        finally:
            await refused.aclose()
        return sum(v is not None for v in found), str(info.value)

    hits, error = asyncio.run(scenario())
    assert hits == 1
    assert "not-the-password-91b2" not in error
    assert ACL_PASSWORD not in repr(good) and ACL_PASSWORD not in str(good.model_dump())


def test_tls_with_a_password_and_an_untrusted_certificate(tmp_path: Path) -> None:
    files, other = make_tls_files(tmp_path / "tls"), make_tls_files(tmp_path / "other", "another CA")
    port = free_port()
    argv = ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(tmp_path), "--tls-cert-file", str(files.cert), "--tls-key-file", str(files.key),
            "--tls-ca-cert-file", str(files.ca), "--tls-auth-clients", "no", "--requirepass", ACL_PASSWORD]  # fmt: skip
    process = ManagedProcess("redis-tls", argv, tmp_path / "redis-tls.log", {}).start()
    try:
        process.wait_ready(lambda: port_in_use(port), timeout_s=20)
        env = {"RAGBUS_REDIS_URL": f"rediss://127.0.0.1:{port}/0", "RAGBUS_REDIS_PASSWORD": ACL_PASSWORD}
        with environment({**env, "RAGBUS_REDIS_SSL_CA_FILE": str(files.ca)}):
            trusted = RedisSettings()
        with environment({**env, "RAGBUS_REDIS_SSL_CA_FILE": str(other.ca)}):
            untrusted = RedisSettings()

        async def scenario() -> tuple[list[np.ndarray | None], str]:
            client = open_redis(trusted)
            try:
                cache = RedisEmbeddingCache(client, KeySpace("tlstest"), "m", ttl_s=600)
                await cache.put_many(["tls"], np.ones((1, 2), dtype="<f4"))
                found = await cache.get_many(["tls"])
            finally:
                await client.aclose()
            refused = open_redis(untrusted)
            try:
                with pytest.raises(redis.ConnectionError) as info:
                    await refused.ping()
            finally:
                await refused.aclose()
            return found, str(info.value)

        found, error = asyncio.run(scenario())
        assert found[0] is not None and found[0].tolist() == [1.0, 1.0]
        assert "certificate verify failed" in error.lower() and ACL_PASSWORD not in error
    finally:
        stop_all([process], timeout_s=10)


def test_rate_limit_counters_and_feedback_on_a_cluster(redis_cluster: str) -> None:
    async def scenario() -> tuple[list[bool], float]:
        client = open_redis(_cluster_settings(redis_cluster))
        try:
            limiter = RedisRateLimiter(client, "clustertest", limit=3, window_s=60)
            refused = []
            for _ in range(4):
                try:
                    await limiter.check("tenant-a", "key-of-a-caller")
                    refused.append(False)
                except RateLimited:
                    refused.append(True)
            feedback = FeedbackStore(client, "clustertest", ttl_s=600)
            await feedback.remember("req-1", "tenant-a", ["otter", "koala"])
            totals = await feedback.record("tenant-a", FeedbackRequest(request_id="req-1", vote="up"))
            return refused, totals.thumbs_up_rate
        finally:
            await client.aclose()

    refused, up_rate = asyncio.run(scenario())
    assert refused == [False, False, False, True]
    assert up_rate > 0


@pytest.mark.slow
def test_query_api_on_a_cluster_caches_and_invalidates_after_an_update(
    redis_cluster: str, base_servers: dict[str, str], tmp_path: Path
) -> None:
    """Workers as usual; the query API's cache, rate limits and single flight on the 3-master cluster."""
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    api_env = {**env, "RAGBUS_REDIS_URL": redis_cluster, "RAGBUS_REDIS_CLUSTER": "true"}
    with running_pipeline(env, tmp_path) as pipeline:
        doc_id = "cluster/lyrebird.md"
        wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, "chainsaws")])))
        with environment(api_env):
            api_settings = load_settings()
        with TestClient(create_app(api_settings)) as api:
            assert api.get("/readyz").status_code == 200
            question = "What does the lyrebird mimic in the breeding season?"
            first = ask(api, question, top_k=1)
            assert first["cached"] is False and "chainsaws" in str(first["answer"])
            assert ask(api, question, top_k=1)["cached"] is True

            wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, "camera shutters")])))
            wait_for(
                lambda: "camera shutters" in str(ask(api, question, top_k=1)["answer"]),
                timeout_s=60,
                message="the update's invalidation to reach the cluster cache",
            )
            after = ask(api, question, top_k=1)
            assert after["cached"] is True and "chainsaws" not in str(after["answer"])


def bird(doc_id: str, sound: str) -> DocumentEvent:
    text = (
        f"The lyrebird is a songbird of the coastal forest. In the breeding season the lyrebird mimics {sound}, "
        "copying it perfectly from its perch. Rangers record the lyrebird every spring."
    )
    return DocumentEvent(doc_id=doc_id, title="Songbirds: the lyrebird", text=text)
