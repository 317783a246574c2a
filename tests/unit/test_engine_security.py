"""Connection settings of secured engines: what each client is given, secrets from files, nothing leaked."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from ragbus.errors import ConfigError
from ragbus.kafka_security import faststream_security, kafka_auth_error, kafka_connection
from ragbus.milvus.connection import milvus_tls_options
from ragbus.redis_store import redis_options
from ragbus.settings import Settings, load_settings
from tests.stack_fixtures import environment
from tests.tls_certs import make_tls_files

SECRET = "s3cr3t-value-4411"


def settings_from(env: dict[str, str]) -> Settings:
    with environment({"RAGBUS_KAFKA_BOOTSTRAP": "k1:9092, k2:9093", **env}):
        return load_settings()


def test_plaintext_clients_get_every_bootstrap_server_and_no_security() -> None:
    settings = settings_from({})
    assert kafka_connection(settings) == {"bootstrap_servers": ["k1:9092", "k2:9093"], "security_protocol": "PLAINTEXT"}
    assert faststream_security(settings) is None


@pytest.mark.parametrize(
    ("mechanism", "kind"), [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)]
)
def test_sasl_over_tls_reaches_aiokafka_and_faststream(mechanism: str, kind: type, tmp_path: Path) -> None:
    ca = make_tls_files(tmp_path).ca
    settings = settings_from(
        {
            "RAGBUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RAGBUS_KAFKA_SASL_MECHANISM": mechanism,
            "RAGBUS_KAFKA_SASL_USERNAME": "ragbus",
            "RAGBUS_KAFKA_SASL_PASSWORD": SECRET,
            "RAGBUS_KAFKA_SSL_CAFILE": str(ca),
        }
    )
    kwargs = kafka_connection(settings)
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == mechanism
    assert kwargs["sasl_plain_username"] == "ragbus" and kwargs["sasl_plain_password"] == SECRET
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].get_ca_certs()[0]["subject"] == ((("commonName", "ragbus test CA"),),)
    security = faststream_security(settings)
    assert security is not None
    assert isinstance(security, kind) and security.use_ssl and security.ssl_context is kwargs["ssl_context"]


def test_tls_only_is_a_plain_faststream_security(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    settings = settings_from(
        {
            "RAGBUS_KAFKA_SECURITY_PROTOCOL": "SSL",
            "RAGBUS_KAFKA_SSL_CAFILE": str(files.ca),
            "RAGBUS_KAFKA_SSL_CERTFILE": str(files.cert),
            "RAGBUS_KAFKA_SSL_KEYFILE": str(files.key),
        }
    )
    security = faststream_security(settings)
    assert type(security) is BaseSecurity and security.use_ssl
    assert "sasl_mechanism" not in kafka_connection(settings)


def test_sasl_without_credentials_fails_at_start_up_naming_the_variables() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from({"RAGBUS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "RAGBUS_KAFKA_SASL_USERNAME": "u"})
    assert "RAGBUS_KAFKA_SASL_PASSWORD" in str(info.value) and "RAGBUS_KAFKA_SASL_USERNAME" in str(info.value)


def test_secrets_come_from_files_and_never_show_in_reprs(tmp_path: Path) -> None:
    for name in ("kafka", "milvus", "redis"):
        (tmp_path / name).write_text(f"{SECRET}-{name}\n")
    settings = settings_from(
        {
            "RAGBUS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "RAGBUS_KAFKA_SASL_USERNAME": "ragbus",
            "RAGBUS_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "kafka"),
            "RAGBUS_MILVUS_TOKEN_FILE": str(tmp_path / "milvus"),
            "RAGBUS_REDIS_USERNAME": "ragbus",
            "RAGBUS_REDIS_PASSWORD_FILE": str(tmp_path / "redis"),
        }
    )
    assert settings.kafka.sasl_password and settings.kafka.sasl_password.get_secret_value() == f"{SECRET}-kafka"
    assert settings.milvus.token and settings.milvus.token.get_secret_value() == f"{SECRET}-milvus"
    assert redis_options(settings.redis)["password"] == f"{SECRET}-redis"
    assert redis_options(settings.redis)["username"] == "ragbus"
    shown = repr(settings) + str(settings) + str(settings.kafka.model_dump()) + settings.redis.model_dump_json()
    assert SECRET not in shown


def test_an_unreadable_secret_file_names_its_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from({"RAGBUS_REDIS_PASSWORD_FILE": str(tmp_path / "missing")})
    assert "RAGBUS_REDIS_PASSWORD_FILE" in str(info.value)


def test_a_refused_login_names_the_settings_and_hides_the_password() -> None:
    settings = settings_from(
        {
            "RAGBUS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "RAGBUS_KAFKA_SASL_USERNAME": "ragbus",
            "RAGBUS_KAFKA_SASL_PASSWORD": SECRET,
        }
    )
    error = kafka_auth_error(settings, ValueError(f"bad proof for {SECRET}"))
    assert error is not None and error.code == "config_error"
    assert "RAGBUS_KAFKA_SASL_USERNAME" in str(error) and SECRET not in str(error)
    assert kafka_auth_error(settings_from({}), KeyError("v")) is None  # no SASL configured: not a login problem


def test_milvus_tls_and_redis_tls_options(tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    env = {
        "RAGBUS_MILVUS_SECURE": "true",
        "RAGBUS_MILVUS_SERVER_PEM_PATH": str(files.cert),
        "RAGBUS_MILVUS_SERVER_NAME": "milvus.internal",
        "RAGBUS_REDIS_URL": "rediss://redis.internal:6380/0",
        "RAGBUS_REDIS_SSL_CA_FILE": str(files.ca),
    }
    settings = settings_from(env)
    assert milvus_tls_options(settings.milvus) == {
        "secure": True,
        "server_pem_path": str(files.cert),
        "server_name": "milvus.internal",
    }
    assert redis_options(settings.redis)["ssl_ca_certs"] == str(files.ca)
    assert milvus_tls_options(settings_from({}).milvus) == {}


def test_group_suffix_is_validated() -> None:
    assert settings_from({"RAGBUS_WORKER_GROUP_SUFFIX": ".dc2"}).worker.group_suffix == ".dc2"
    with pytest.raises(ConfigError, match="RAGBUS_WORKER_GROUP_SUFFIX"):
        settings_from({"RAGBUS_WORKER_GROUP_SUFFIX": "bad suffix!"})


@pytest.mark.parametrize("variable", ["RAGBUS_MILVUS_URI", "RAGBUS_MILVUS_READ_URIS"], ids=["uri", "read-uris"])
def test_milvus_uris_with_credentials_are_refused(variable: str) -> None:
    # URIs are logged and label the replica metrics, so a password inside one would leak.
    with pytest.raises(ConfigError) as info:
        settings_from({variable: f"http://a:19530,http://root:{SECRET}@b:19530"})
    assert variable in str(info.value) and "RAGBUS_MILVUS_TOKEN" in str(info.value)
    assert SECRET not in str(info.value)
    settings_from({variable: "https://milvus.internal:19530/db"})  # a path or a port is fine
