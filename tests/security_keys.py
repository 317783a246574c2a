"""Credentials for the API security tests: API keys, an HS256 secret and an RSA key pair, and token makers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from query_api.security.api_keys import key_entry, new_key
from query_api.security.principal import Scope

HS_SECRET = "test-secret-of-at-least-thirty-two-bytes!"
READ_WRITE = frozenset({Scope.READ, Scope.WRITE})
READ_ONLY = frozenset({Scope.READ})


def _rsa() -> tuple[Any, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public_pem


@dataclass
class Credentials:
    """Keys by name (tenant acme read+write, acme read-only, globex read+write) and JWT signing material."""

    keys: dict[str, str] = field(default_factory=lambda: {name: new_key() for name in ("acme", "acme_ro", "globex")})
    rsa_private: Any = None
    rsa_public_pem: str = ""

    def __post_init__(self) -> None:
        self.rsa_private, self.rsa_public_pem = _rsa()

    @property
    def entries(self) -> str:
        """RAGBUS_API_KEYS for the keys."""
        return ",".join(
            [
                key_entry(self.keys["acme"], "acme", READ_WRITE),
                key_entry(self.keys["acme_ro"], "acme", READ_ONLY),
                key_entry(self.keys["globex"], "globex", READ_WRITE),
            ]
        )

    def env(self) -> dict[str, str]:
        """Environment that switches authentication on with every credential kind."""
        return {
            "RAGBUS_API_AUTH": "on",
            "RAGBUS_API_KEYS": self.entries,
            "RAGBUS_API_JWT_HS256_SECRET": HS_SECRET,
            "RAGBUS_API_JWT_RS256_PUBLIC_KEY": self.rsa_public_pem,
        }

    def hs256(self, tenant: str, *, expires_in: float = 300, **claims: Any) -> str:
        """An HS256 token."""
        payload = {"tenant": tenant, "sub": "tester", "exp": int(time.time() + expires_in), **claims}
        return jwt.encode(payload, HS_SECRET, algorithm="HS256")

    def rs256(self, tenant: str, *, expires_in: float = 300, **claims: Any) -> str:
        """An RS256 token."""
        payload = {"tenant": tenant, "sub": "tester", "exp": int(time.time() + expires_in), **claims}
        return jwt.encode(payload, self.rsa_private, algorithm="RS256")
