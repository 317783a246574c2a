"""The real Milvus engine secured as in production: a login required and TLS only (conftest.real_milvus).

Every real-engine test of the suite connects to it with the token file and the CA; these tests show that the
security is really on (an anonymous or plain-text client is refused) and that a client with a wrong password or an
untrusted certificate fails at start-up with a ConfigError that names the settings and never the secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from query_api.app import create_app
from ragbus.errors import ConfigError
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import MilvusSettings, load_settings
from tests.stack_fixtures import SECURED_MILVUS, environment, pipeline_env
from tests.tls_certs import make_tls_files

pytestmark = [pytest.mark.integration, pytest.mark.real_milvus]
WRONG_PASSWORD = "wrong-milvus-pw-7c2e"


def token_of(real_milvus: str) -> str:
    return Path(SECURED_MILVUS[real_milvus]["RAGBUS_MILVUS_TOKEN_FILE"]).read_text().strip()


def refused_login_env(real_milvus: str, base_servers: dict[str, str]) -> dict[str, str]:
    """A deployment's environment on the secured engine, with the right CA but a wrong password."""
    env = pipeline_env(base_servers["kafka"], real_milvus, base_servers["redis"])
    env.pop("RAGBUS_MILVUS_TOKEN_FILE")
    return env | {"RAGBUS_MILVUS_TOKEN": f"root:{WRONG_PASSWORD}"}


def run_ragbus(env: dict[str, str], *args: str, timeout_s: float) -> tuple[int, str]:
    """`python -m ragbus ARGS` in `env`; (exit code, stdout + stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "ragbus", *args],
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_engine_refuses_anonymous_and_plain_text_clients(real_milvus: str) -> None:
    ca = SECURED_MILVUS[real_milvus]["RAGBUS_MILVUS_SERVER_PEM_PATH"]
    with pytest.raises(Exception, match=r"UNAUTHENTICATED|illegal connection params"):
        MilvusClient(uri=real_milvus, server_pem_path=ca, timeout=5).list_collections()
    plain = real_milvus.replace("https://", "http://")
    with pytest.raises(Exception, match=r"illegal connection params|UNAVAILABLE"):
        MilvusClient(uri=plain, token=token_of(real_milvus), timeout=5).list_collections()
    # The same login over TLS with the trusted CA works: what the rest of the suite does.
    client = MilvusClient(uri=real_milvus, token=token_of(real_milvus), server_pem_path=ca, timeout=10)
    try:
        assert isinstance(client.list_collections(), list)
    finally:
        client.close()


def test_ragbus_connects_with_the_token_file_and_the_ca(real_milvus: str) -> None:
    with environment(SECURED_MILVUS[real_milvus]):
        settings = MilvusSettings()
    assert settings.token is not None and ":" in settings.token.get_secret_value()
    assert settings.token.get_secret_value() not in repr(settings)
    store = MilvusChunkStore(settings, real_milvus)
    try:
        assert isinstance(store.client.list_collections(), list)
    finally:
        store.close()


def test_a_wrong_password_is_a_config_error_naming_the_token_settings(real_milvus: str) -> None:
    secured = SECURED_MILVUS[real_milvus]
    with environment({"RAGBUS_MILVUS_SERVER_PEM_PATH": secured["RAGBUS_MILVUS_SERVER_PEM_PATH"]}):
        settings = MilvusSettings(token=f"root:{WRONG_PASSWORD}")
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        MilvusChunkStore(settings, real_milvus)
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "refused the credentials" in message and "RAGBUS_MILVUS_TOKEN" in message
    assert WRONG_PASSWORD not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chain that could hold the token


def test_an_untrusted_server_certificate_is_a_config_error_naming_the_pem_setting(
    real_milvus: str, tmp_path: Path
) -> None:
    other_ca = make_tls_files(tmp_path / "other", "another CA").ca
    settings = MilvusSettings(token=token_of(real_milvus), server_pem_path=other_ca)
    with pytest.raises(ConfigError, match=r"CERTIFICATE_VERIFY_FAILED.*RAGBUS_MILVUS_SERVER_PEM_PATH"):
        MilvusChunkStore(settings, real_milvus)


def test_the_query_api_does_not_start_with_a_refused_login(real_milvus: str, base_servers: dict[str, str]) -> None:
    with environment(refused_login_env(real_milvus, base_servers)):
        settings = load_settings()
    from fastapi.testclient import TestClient

    with pytest.raises(ConfigError, match="RAGBUS_MILVUS_TOKEN"), TestClient(create_app(settings)):
        pass


def test_an_indexer_with_a_refused_login_exits_naming_the_settings(
    real_milvus: str, base_servers: dict[str, str]
) -> None:
    started = time.monotonic()
    returncode, output = run_ragbus(refused_login_env(real_milvus, base_servers), "worker", "indexer", timeout_s=180)
    assert returncode != 0, output[-2000:]
    assert time.monotonic() - started < 90  # start-up included; no retry loop
    assert "refused the credentials" in output and "RAGBUS_MILVUS_TOKEN" in output
    assert WRONG_PASSWORD not in output


def test_ragbus_status_names_the_refused_milvus_login(real_milvus: str, base_servers: dict[str, str]) -> None:
    _, output = run_ragbus(refused_login_env(real_milvus, base_servers), "status", timeout_s=120)
    assert "refused the credentials" in output and "RAGBUS_MILVUS_TOKEN" in output, output
    assert "Traceback" not in output
    assert WRONG_PASSWORD not in output
