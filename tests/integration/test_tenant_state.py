"""Tenants share no state in Redis: a deployment on a Redis of its own, used by two tenants, holds only keys that
name their tenant or are global by design (docs/operations.md lists both); feedback totals are per tenant."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.settings import load_settings
from ragbus.stack.process import free_port, stop_all
from ragbus.stack.servers import start_redis
from tests.pipeline_helpers import wait_indexed
from tests.security_keys import Credentials
from tests.stack_fixtures import Pipeline, environment, pipeline_env, running_pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TENANTS = ("acme", "globex")

# Every key ragbus writes, as documented in docs/operations.md ("Redis keys"): {ns} is RAGBUS_REDIS_NAMESPACE,
# {alias} RAGBUS_MILVUS_ALIAS, {tenant} the caller's tenant; the rest are hashes, ids and windows.
TENANT_KEYS = (
    "{ns}:qc:{alias}:{{tenant}}:gen",
    "{ns}:qc:{alias}:{{tenant}}:seq",
    "{ns}:qc:{alias}:{{tenant}}:a:{fingerprint}",
    "{ns}:qc:{alias}:{{tenant}}:a:{fingerprint}:lock",
    "{ns}:qc:{alias}:{{tenant}}:last:{fingerprint}",
    "{ns}:qc:{alias}:{{tenant}}:doc:{doc_hash}",
    "{ns}:feedback:query:{tenant}:{request_id}",
    "{ns}:feedback:query:{tenant}:{request_id}:vote",
    "{ns}:feedback:totals:{tenant}",
    "{ns}:rl:{tenant}:{subject_hash}:{window}",
    "{ns}:fresh:{tenant}",
)
GLOBAL_KEYS = (
    "{ns}:emb:{content_hash}",
    "{ns}:stats:embedding-cache",
    "{ns}:gen:{alias}",
    "{ns}:written:{collection}",
)


def _regex(pattern: str, ns: str, alias: str) -> re.Pattern[str]:
    """A documented pattern as a regex: {tenant} is captured, any other placeholder is one key segment."""
    escaped = re.escape(pattern.replace("{ns}", ns).replace("{alias}", alias))
    escaped = escaped.replace(r"\{\{tenant\}\}", r"\{(?P<tenant>[^:}]+)\}").replace(r"\{tenant\}", r"(?P<tenant>[^:]+)")
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", r"[^:]+", escaped) + "$")


@pytest.fixture(scope="module")
def creds() -> Credentials:
    return Credentials()


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """A Redis server of the module's own: every key in it was written by the deployment below."""
    home = tmp_path_factory.mktemp("tenant-redis")
    process = start_redis(home, free_port())
    port = process.argv[process.argv.index("--port") + 1]
    client = redis.Redis(host="127.0.0.1", port=int(port))
    try:
        yield client
    finally:
        client.close()
        stop_all([process], timeout_s=10)


@pytest.fixture(scope="module")
def deployment(base_servers: dict[str, str], stack_home: Path, own_redis: redis.Redis) -> Iterator[Pipeline]:
    """Workers of a fresh deployment whose Redis is `own_redis`."""
    port = own_redis.connection_pool.connection_kwargs["port"]
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], f"redis://127.0.0.1:{port}/0")
    with running_pipeline(env, stack_home) as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def tenant_api(deployment: Pipeline, creds: Credentials) -> Iterator[TestClient]:
    """The deployment's API with authentication on and the default rate limit (so its counters are written)."""
    with environment({**deployment.env, **creds.env()}):
        settings = load_settings()
    with TestClient(create_app(settings)) as client:
        yield client


def _headers(creds: Credentials, tenant: str) -> dict[str, str]:
    return {"X-API-Key": creds.keys[tenant]}


def _ask(api: TestClient, creds: Credentials, tenant: str, query: str) -> str:
    response = api.post("/v1/query", json={"query": query, "top_k": 3}, headers=_headers(creds, tenant))
    assert response.status_code == 200, response.text
    return response.headers["X-Request-ID"]


def _vote(api: TestClient, creds: Credentials, tenant: str, request_id: str, vote: str) -> dict[str, object]:
    body = {"request_id": request_id, "vote": vote}
    response = api.post("/v1/feedback", json=body, headers=_headers(creds, tenant))
    assert response.status_code == 200, response.text
    totals: dict[str, object] = response.json()
    return totals


def test_every_redis_key_is_tenant_scoped_or_global_by_design(
    deployment: Pipeline, tenant_api: TestClient, creds: Credentials, own_redis: redis.Redis
) -> None:
    settings = deployment.settings
    ns, alias = settings.redis.namespace, settings.milvus.alias
    # Each tenant publishes over REST, asks (twice: a cache hit), and votes.
    versions = {}
    for tenant in TENANTS:
        doc = {"doc_id": f"notes/{tenant}.md", "title": tenant, "text": f"The {tenant} quokka eats ferns at dawn."}
        sent = tenant_api.post("/v1/documents", json=doc, headers=_headers(creds, tenant))
        assert sent.status_code == 202, sent.text
        versions[(tenant, doc["doc_id"])] = sent.json()["versions"][0]
    wait_indexed(deployment, versions)
    for tenant in TENANTS:
        # The change reached the API's cache-invalidation consumer: the tenant's change sequence moved.
        seq = f"{ns}:qc:{alias}:{{{tenant}}}:seq"
        wait_for(lambda key=seq: own_redis.exists(key), timeout_s=120, message=f"{seq} written")
        request_id = _ask(tenant_api, creds, tenant, "What does the quokka eat?")
        _ask(tenant_api, creds, tenant, "What does the quokka eat?")
        _vote(tenant_api, creds, tenant, request_id, "up")

    keys = sorted(key.decode() for key in own_redis.scan_iter(count=1000))
    tenant_patterns = [_regex(p, ns, alias) for p in TENANT_KEYS]
    global_patterns = [_regex(p, ns, alias) for p in GLOBAL_KEYS]
    seen_tenants: dict[str, set[str]] = {}
    unexplained = []
    for key in keys:
        scoped = next((m for m in (p.match(key) for p in tenant_patterns) if m), None)
        if scoped:
            seen_tenants.setdefault(scoped["tenant"], set()).add(key)
        elif not any(p.match(key) for p in global_patterns):
            unexplained.append(key)
    assert not unexplained, f"keys neither tenant-scoped nor global by design: {unexplained}"
    assert set(seen_tenants) == set(TENANTS), seen_tenants.keys()
    for tenant in TENANTS:  # each tenant's cache entries, change counters, feedback and rate-limit window
        kinds = {re.sub(r"^.*?" + re.escape(tenant) + r"\}?:", "", k).split(":")[0] for k in seen_tenants[tenant]}
        assert {"a", "last", "doc", "seq", "gen"} <= kinds, (tenant, kinds)
        assert f"{ns}:feedback:totals:{tenant}" in seen_tenants[tenant]
        assert any(key.startswith(f"{ns}:rl:{tenant}:") for key in seen_tenants[tenant])
    assert any(_regex(GLOBAL_KEYS[0], ns, alias).match(key) for key in keys)  # the workers' embedding cache

    operations = (ROOT / "docs" / "operations.md").read_text()
    for pattern in (*TENANT_KEYS, *GLOBAL_KEYS):
        assert f"`{pattern}`" in operations, f"{pattern} is not documented"


def test_feedback_totals_are_per_tenant(
    deployment: Pipeline, tenant_api: TestClient, creds: Credentials, own_redis: redis.Redis
) -> None:
    totals_key = f"{deployment.settings.redis.namespace}:feedback:totals:{{}}".format
    marker = uuid.uuid4().hex[:6]
    acme = [_ask(tenant_api, creds, "acme", f"Where does the quokka sleep? {marker} {i}") for i in range(2)]
    globex = [_ask(tenant_api, creds, "globex", f"Where does the quokka sleep? {marker} {i}") for i in range(3)]
    first = _vote(tenant_api, creds, "acme", acme[0], "up")
    # Globex votes down three times: acme (which only ever voted up) still sees a thumbs-up rate of 1.
    for request_id in globex:
        globex_totals = _vote(tenant_api, creds, "globex", request_id, "down")
    second = _vote(tenant_api, creds, "acme", acme[1], "up")
    assert first["thumbs_up_rate"] == second["thumbs_up_rate"] == 1.0
    # Globex's figure counts its own votes and nothing else.
    stored = {k.decode(): int(v) for k, v in own_redis.hgetall(totals_key("globex")).items()}
    assert stored["down"] >= 3
    assert globex_totals["thumbs_up_rate"] == stored.get("up", 0) / (stored.get("up", 0) + stored["down"]) < 1.0
    assert b"down" not in own_redis.hgetall(totals_key("acme"))
    # A tenant cannot vote on another tenant's query, so it cannot reach the other's totals that way either.
    stolen = tenant_api.post(
        "/v1/feedback", json={"request_id": acme[0], "vote": "down"}, headers=_headers(creds, "globex")
    )
    assert stolen.status_code == 404
    metrics = tenant_api.get("/metrics/").text
    assert f'ragbus_thumbs_up_rate{{tenant="globex"}} {globex_totals["thumbs_up_rate"]}' in metrics
    assert 'ragbus_thumbs_up_rate{tenant="acme"} 1.0' in metrics
