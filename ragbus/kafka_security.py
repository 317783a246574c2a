"""How every Kafka client connects: bootstrap list, SASL and TLS, built from KafkaSettings in one place.

`kafka_connection(settings)` gives the keyword arguments of every aiokafka producer, consumer and admin client;
`faststream_security(settings)` gives the same as FastStream's `security=` object for the workers' broker.
`kafka_auth_error` turns what a refused login looks like in aiokafka (a bare KeyError from the SCRAM exchange,
an UnsupportedSaslMechanism connection error, an SSL error) into a ConfigError naming the settings to check —
never the secret itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from functools import cache
from typing import Any

from aiokafka.errors import KafkaConnectionError
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from ragbus.errors import ConfigError, TransientError
from ragbus.settings import KafkaSettings, Settings


@cache
def _ssl_context(cafile: str | None, certfile: str | None, keyfile: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    return context


def kafka_ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL, from RAGBUS_KAFKA_SSL_*; None on plaintext."""
    if not kafka.security_protocol.endswith("SSL"):
        return None
    path = lambda p: str(p) if p else None  # noqa: E731 - a local shorthand
    return _ssl_context(path(kafka.ssl_cafile), path(kafka.ssl_certfile), path(kafka.ssl_keyfile))


def kafka_connection(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client: bootstrap servers, protocol, SASL and TLS."""
    kafka = settings.kafka
    kwargs: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.kafka_bootstrap.split(",") if s.strip()],
        "security_protocol": kafka.security_protocol,
    }
    context = kafka_ssl_context(kafka)
    if context is not None:
        kwargs["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL_") and kafka.sasl_password is not None:
        kwargs |= {
            "sasl_mechanism": kafka.sasl_mechanism,
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": kafka.sasl_password.get_secret_value(),
        }
    return kwargs


def faststream_security(settings: Settings) -> BaseSecurity | None:
    """The FastStream `security=` object equivalent to `kafka_connection` (None on plaintext)."""
    kafka = settings.kafka
    context = kafka_ssl_context(kafka)
    use_ssl = context is not None
    if kafka.security_protocol.startswith("SASL_") and kafka.sasl_password is not None:
        sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
        return sasl[kafka.sasl_mechanism](
            username=kafka.sasl_username or "",
            password=kafka.sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=use_ssl,
        )
    if use_ssl:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def kafka_auth_error(settings: Settings, exc: BaseException) -> ConfigError | None:
    """A ConfigError naming the settings to check when `exc` is a refused SASL login or TLS handshake, else None."""
    kafka = settings.kafka
    text = f"{type(exc).__name__}: {exc}"
    secret = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    if secret:
        text = text.replace(secret, "***")
    sasl = kafka.security_protocol.startswith("SASL_")
    # aiokafka's SCRAM exchange fails with KeyError('v') when the broker answers `e=unknown-user` or
    # `e=invalid-proof`; a refused mechanism shows up as UnsupportedSaslMechanism inside a connection error.
    if sasl and (isinstance(exc, KeyError | ValueError) or "Sasl" in text or "SASL" in text):
        return ConfigError(
            f"Kafka at {settings.kafka_bootstrap} refused the SASL login ({text}); check RAGBUS_KAFKA_SASL_USERNAME, "
            f"RAGBUS_KAFKA_SASL_PASSWORD(_FILE) and RAGBUS_KAFKA_SASL_MECHANISM={kafka.sasl_mechanism}"
        )
    if kafka.security_protocol.endswith("SSL") and isinstance(exc, ssl.SSLError):
        return _tls_error(settings.kafka_bootstrap, exc)
    return None


def _tls_error(server: str, exc: ssl.SSLError) -> ConfigError:
    return ConfigError(
        f"TLS handshake with Kafka at {server} failed ({exc.reason or exc}); check RAGBUS_KAFKA_SSL_CAFILE, "
        "RAGBUS_KAFKA_SSL_CERTFILE/KEYFILE and RAGBUS_KAFKA_SECURITY_PROTOCOL"
    )


async def _tls_refused(settings: Settings) -> ConfigError | None:
    # aiokafka only logs why a TLS connection failed and raises "Unable to bootstrap": one handshake per bootstrap
    # server tells a certificate problem (a setting to fix) from a server that is down (worth retrying).
    context = kafka_ssl_context(settings.kafka)
    if context is None:
        return None
    for server in kafka_connection(settings)["bootstrap_servers"]:
        host, _, port = server.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port), ssl=context), timeout=5)
        except ssl.SSLError as exc:
            return _tls_error(server, exc)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return None


async def kafka_start_error(settings: Settings, exc: Exception) -> Exception:
    """What a client's failed start means: a ConfigError for a refused login or certificate, else a TransientError
    for an unreachable cluster; any other exception is returned as it is."""
    refused = kafka_auth_error(settings, exc)
    if refused is None and isinstance(exc, KafkaConnectionError):
        refused = await _tls_refused(settings)
    if refused is not None:
        return refused
    if isinstance(exc, KafkaConnectionError):
        hint = "RAGBUS_KAFKA_BOOTSTRAP"
        if settings.kafka.security_protocol.startswith("SASL_"):
            # A broker that does not offer the mechanism closes the connection: it looks like an outage.
            hint += f" and RAGBUS_KAFKA_SASL_MECHANISM={settings.kafka.sasl_mechanism} (offered by the broker?)"
        return TransientError(f"Kafka at {settings.kafka_bootstrap} unreachable ({exc}); check {hint}")
    return exc
