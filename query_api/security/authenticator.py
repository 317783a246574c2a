"""Turns the credential of a request (X-API-Key or Authorization: Bearer) into a Principal."""

from __future__ import annotations

from query_api.security.api_keys import KEY_PREFIX, KeyRing
from query_api.security.errors import Unauthenticated
from query_api.security.jwt_tokens import JwtVerifier
from query_api.security.principal import ANONYMOUS, Principal
from ragbus.errors import ConfigError
from ragbus.settings import ApiSecuritySettings


class Authenticator:
    """API keys and JWT bearer tokens; with RAGBUS_API_AUTH=off every caller is the anonymous default tenant."""

    def __init__(self, keys: KeyRing, tokens: JwtVerifier, *, enabled: bool) -> None:
        self.keys, self.tokens, self.enabled = keys, tokens, enabled

    @classmethod
    def from_settings(cls, settings: ApiSecuritySettings) -> Authenticator:
        """ConfigError at start-up when authentication is on but no credential could ever be accepted."""
        keys = KeyRing.load(settings.keys.get_secret_value(), settings.keys_file)
        tokens = JwtVerifier(settings)
        enabled = settings.auth != "off"
        if enabled and not keys.by_hash and not tokens.enabled:
            raise ConfigError(
                "RAGBUS_API_AUTH is on but no credential is configured: set RAGBUS_API_KEYS (see `ragbus api-key "
                "create`), RAGBUS_API_KEYS_FILE, RAGBUS_API_JWT_HS256_SECRET or RAGBUS_API_JWT_RS256_PUBLIC_KEY, "
                "or RAGBUS_API_AUTH=off for a local demo"
            )
        return cls(keys, tokens, enabled=enabled)

    def authenticate(self, api_key: str | None, bearer: str | None) -> Principal:
        """The caller; Unauthenticated for a missing, unknown, malformed or expired credential."""
        if not self.enabled:
            return ANONYMOUS
        if api_key:
            return self._by_key(api_key)
        if bearer:
            # An API key may also be sent as a bearer token; anything else is a JWT.
            return self._by_key(bearer) if bearer.startswith(KEY_PREFIX) else self._by_token(bearer)
        raise Unauthenticated("missing credential: send X-API-Key or Authorization: Bearer <token>")

    def _by_key(self, key: str) -> Principal:
        principal = self.keys.lookup(key)
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal

    def _by_token(self, token: str) -> Principal:
        if not self.tokens.enabled:
            raise Unauthenticated("bearer tokens are not accepted by this deployment")
        return self.tokens.verify(token)
