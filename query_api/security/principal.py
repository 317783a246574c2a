"""The authenticated caller: a tenant, the scopes it holds, and the identity its rate limit counts against."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """Rights a credential can carry."""

    READ = "read"  # ask questions, send feedback
    WRITE = "write"  # publish and delete documents


@dataclass(frozen=True)
class Principal:
    """Who is calling; the tenant comes only from here, never from a request body."""

    tenant: str
    scopes: frozenset[Scope]
    subject: str  # key id or token subject: what the rate limit counts
    limited: bool = True  # False only with RAGBUS_API_AUTH=off

    def allows(self, scope: Scope) -> bool:
        """Whether the credential carries `scope`."""
        return scope in self.scopes


ANONYMOUS = Principal(tenant="default", scopes=frozenset(Scope), subject="anonymous", limited=False)


def parse_scopes(raw: str | list[str], *, separators: str) -> frozenset[Scope]:
    """Scopes of a key entry or token claim; ValueError on an unknown one."""
    words = raw if isinstance(raw, list) else [raw]
    parts = [p for w in words for p in _split(str(w), separators) if p]
    return frozenset(Scope(p) for p in parts)


def _split(text: str, separators: str) -> list[str]:
    for sep in separators[1:]:
        text = text.replace(sep, separators[0])
    return text.split(separators[0])
