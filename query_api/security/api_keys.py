"""API keys: random secrets handed to callers; the server keeps only their SHA-256, tenant and scopes."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from query_api.security.principal import Principal, Scope, parse_scopes
from ragbus.errors import ConfigError

KEY_PREFIX = "rbk_"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def hash_key(key: str) -> str:
    """SHA-256 of a key (keys carry 256 random bits, so a fast hash is enough to make a leak useless)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh key to hand to a caller."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_entry(key: str, tenant: str, scopes: frozenset[Scope]) -> str:
    """The RAGBUS_API_KEYS entry of a key: `sha256hex:tenant:scope+scope`."""
    if not _TENANT.match(tenant):
        raise ConfigError(f"invalid tenant {tenant!r}: letters, digits, _ . - (at most 64)")
    return f"{hash_key(key)}:{tenant}:{'+'.join(sorted(scopes))}"


@dataclass(frozen=True)
class KeyRing:
    """Known keys by hash."""

    by_hash: dict[str, Principal]

    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """Entries separated by commas or newlines; `#` starts a comment. ConfigError names `source`."""
        ring: dict[str, Principal] = {}
        lines = [line.split("#", 1)[0] for line in text.splitlines()]
        entries = [e.strip() for line in lines for e in line.split(",") if e.strip()]
        for n, entry in enumerate(entries, 1):
            parts = entry.split(":")
            digest, tenant, scopes = parts if len(parts) == 3 else ("", "", "")
            try:
                parsed = parse_scopes(scopes, separators="+")
            except ValueError:
                parsed = frozenset()
            if not (_HEX64.match(digest) and _TENANT.match(tenant) and parsed):
                # The entry itself is not echoed: it may be a raw key pasted by mistake.
                raise ConfigError(f"{source}: entry {n} is not `sha256hex:tenant:read+write`")
            ring[digest] = Principal(tenant=tenant, scopes=parsed, subject=f"key:{digest[:16]}")
        return cls(ring)

    @classmethod
    def load(cls, keys: str, keys_file: Path | None) -> KeyRing:
        """RAGBUS_API_KEYS plus the lines of RAGBUS_API_KEYS_FILE."""
        ring = cls.parse(keys, "RAGBUS_API_KEYS").by_hash
        if keys_file is not None:
            try:
                text = keys_file.read_text()
            except OSError as exc:
                raise ConfigError(f"RAGBUS_API_KEYS_FILE {keys_file} is unreadable: {exc}") from None
            ring = {**ring, **cls.parse(text, f"RAGBUS_API_KEYS_FILE {keys_file}").by_hash}
        return cls(ring)

    def lookup(self, key: str) -> Principal | None:
        """The principal of a presented key, or None."""
        return self.by_hash.get(hash_key(key))
