"""JWT bearer tokens: HS256 with a shared secret, RS256 with a public key; expiry and tenant claim required."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from query_api.security.errors import Unauthenticated
from query_api.security.principal import Principal, Scope, parse_scopes
from ragbus.errors import ConfigError
from ragbus.settings import ApiSecuritySettings

_TENANT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _rsa_public_key(value: str) -> RSAPublicKey:
    """The RSA key of RAGBUS_API_JWT_RS256_PUBLIC_KEY: PEM text, or the path of a PEM file."""
    if value.lstrip().startswith("-----BEGIN"):
        pem = value
    else:
        try:
            pem = Path(value).read_text()
        except OSError as exc:
            raise ConfigError(
                f"RAGBUS_API_JWT_RS256_PUBLIC_KEY: neither a PEM key nor a readable file ({exc})"
            ) from None
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ConfigError(f"RAGBUS_API_JWT_RS256_PUBLIC_KEY is not a PEM public key: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise ConfigError("RAGBUS_API_JWT_RS256_PUBLIC_KEY is not an RSA key")
    return key


class JwtVerifier:
    """Verifies a token with the key of the algorithm its header names; only configured algorithms are accepted."""

    def __init__(self, settings: ApiSecuritySettings) -> None:
        self.keys: dict[str, Any] = {}
        if settings.jwt_hs256_secret is not None:
            self.keys["HS256"] = settings.jwt_hs256_secret.get_secret_value()
        if settings.jwt_rs256_public_key:
            self.keys["RS256"] = _rsa_public_key(settings.jwt_rs256_public_key)
        self.issuer, self.audience = settings.jwt_issuer, settings.jwt_audience
        self.tenant_claim = settings.jwt_tenant_claim

    @property
    def enabled(self) -> bool:
        """Whether any algorithm is configured."""
        return bool(self.keys)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; Unauthenticated otherwise."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise Unauthenticated("malformed bearer token") from None
        # The key is chosen by algorithm, so an HS256 token can never be checked against the RSA public key.
        key = self.keys.get(str(algorithm))
        if key is None:
            raise Unauthenticated(f"bearer tokens signed with {algorithm} are not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", self.tenant_claim], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("bearer token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid bearer token: {exc}") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        tenant = claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not 0 < len(tenant) <= 64 or not set(tenant) <= _TENANT_CHARS:
            raise Unauthenticated(f"bearer token has no valid {self.tenant_claim!r} claim")
        raw = claims.get("scope", claims.get("scopes", Scope.READ.value))
        try:
            scopes = parse_scopes(raw if isinstance(raw, list) else str(raw), separators=" ,+")
        except ValueError:
            raise Unauthenticated("bearer token carries an unknown scope") from None
        subject = str(claims.get("sub", "unknown"))[:128]
        return Principal(tenant=tenant, scopes=scopes, subject=f"jwt:{tenant}:{subject}")
