"""API keys and JWT bearer tokens: who is accepted, as which tenant, with which scopes, and who is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from query_api.security.api_keys import KeyRing, hash_key, key_entry, new_key
from query_api.security.authenticator import Authenticator
from query_api.security.errors import Unauthenticated
from query_api.security.principal import Scope
from ragbus.errors import ConfigError
from ragbus.settings import ApiSecuritySettings
from tests.security_keys import HS_SECRET, READ_ONLY, Credentials


@pytest.fixture(scope="module")
def creds() -> Credentials:
    return Credentials()


@pytest.fixture(scope="module")
def auth(creds: Credentials) -> Authenticator:
    settings = ApiSecuritySettings(
        auth="on",
        keys=creds.entries,
        jwt_hs256_secret=HS_SECRET,
        jwt_rs256_public_key=creds.rsa_public_pem,
    )
    return Authenticator.from_settings(settings)


def test_unset_auth_is_on_and_refuses_to_start_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAGBUS_API_AUTH", "RAGBUS_API_KEYS", "RAGBUS_API_JWT_HS256_SECRET", "RAGBUS_API_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = ApiSecuritySettings()
    assert settings.auth == "on"
    with pytest.raises(ConfigError, match="RAGBUS_API_AUTH is on"):
        Authenticator.from_settings(settings)


@pytest.mark.parametrize("value", ["false", "0", "no", "OFF ", ""])
def test_only_the_word_off_switches_auth_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RAGBUS_API_AUTH", value)
    with pytest.raises(ValueError, match="auth"):
        ApiSecuritySettings()


def test_auth_off_makes_every_caller_the_unlimited_default_tenant() -> None:
    principal = Authenticator.from_settings(ApiSecuritySettings(auth="off")).authenticate(None, None)
    assert (principal.tenant, principal.limited) == ("default", False)
    assert principal.allows(Scope.WRITE)


def test_short_hs256_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="RAGBUS_API_JWT_HS256_SECRET"):
        ApiSecuritySettings(jwt_hs256_secret="short")


def test_key_entries_store_only_the_hash(creds: Credentials) -> None:
    key = creds.keys["acme"]
    assert key not in creds.entries
    assert hash_key(key) in creds.entries
    assert key.startswith("rbk_") and len(key) > 40


def test_api_keys_resolve_to_their_tenant_and_scopes(auth: Authenticator, creds: Credentials) -> None:
    acme = auth.authenticate(creds.keys["acme"], None)
    assert acme.tenant == "acme" and acme.allows(Scope.WRITE)
    read_only = auth.authenticate(None, creds.keys["acme_ro"])  # a key may also come as a bearer token
    assert read_only.tenant == "acme" and not read_only.allows(Scope.WRITE)
    assert acme.subject != read_only.subject  # rate limits count per key
    assert auth.authenticate(creds.keys["globex"], None).tenant == "globex"


@pytest.mark.parametrize("presented", [None, "", "rbk_unknown", "not-a-key"])
def test_missing_or_unknown_keys_are_refused(auth: Authenticator, presented: str | None) -> None:
    with pytest.raises(Unauthenticated):
        auth.authenticate(presented, None)


def test_hs256_and_rs256_tokens_carry_tenant_and_scopes(auth: Authenticator, creds: Credentials) -> None:
    hs = auth.authenticate(None, creds.hs256("acme", scope="read write"))
    assert hs.tenant == "acme" and hs.allows(Scope.WRITE)
    rs = auth.authenticate(None, creds.rs256("globex"))
    assert rs.tenant == "globex" and rs.scopes == READ_ONLY  # no scope claim: read only


def test_expired_token_is_refused(auth: Authenticator, creds: Credentials) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(None, creds.hs256("acme", expires_in=-60))


def test_token_without_expiry_or_tenant_is_refused(auth: Authenticator, creds: Credentials) -> None:
    import jwt

    no_exp = jwt.encode({"tenant": "acme"}, HS_SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="exp"):
        auth.authenticate(None, no_exp)
    with pytest.raises(Unauthenticated):
        auth.authenticate(None, creds.hs256("bad tenant!"))
    no_tenant = jwt.encode({"exp": 4_000_000_000}, HS_SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="tenant"):
        auth.authenticate(None, no_tenant)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, str], payload: dict[str, object], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{_b64(signature)}"


def test_forged_tokens_are_refused(auth: Authenticator, creds: Credentials) -> None:
    claims = {"tenant": "globex", "exp": 4_000_000_000, "scope": "write"}
    # Algorithm confusion: HS256 signed with the (public) RSA key as the HMAC secret.
    confused = _forge({"alg": "HS256", "typ": "JWT"}, claims, creds.rsa_public_pem.encode())
    unsigned = _forge({"alg": "none", "typ": "JWT"}, claims, b"")
    wrong_secret = _forge({"alg": "HS256", "typ": "JWT"}, claims, b"x" * 40)
    tampered = creds.hs256("acme").rsplit(".", 2)
    tampered[1] = _b64(json.dumps({**claims, "tenant": "acme"}).encode())
    for token in (confused, unsigned, wrong_secret, ".".join(tampered), "garbage"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(None, token)


def test_tokens_are_refused_where_no_jwt_key_is_configured(creds: Credentials) -> None:
    keys_only = Authenticator.from_settings(ApiSecuritySettings(auth="on", keys=creds.entries))
    with pytest.raises(Unauthenticated, match="not accepted"):
        keys_only.authenticate(None, creds.hs256("acme"))


def test_bad_key_entries_fail_at_start_without_echoing_them(tmp_path: Path) -> None:
    raw = new_key()
    with pytest.raises(ConfigError, match="entry 1") as caught:
        KeyRing.parse(raw, "RAGBUS_API_KEYS")
    assert raw not in str(caught.value)
    with pytest.raises(ConfigError):
        KeyRing.parse(f"{hash_key(raw)}:acme:admin", "RAGBUS_API_KEYS")
    with pytest.raises(ConfigError, match="RAGBUS_API_KEYS_FILE"):
        KeyRing.load("", tmp_path / "missing")


def test_keys_file_adds_entries(tmp_path: Path) -> None:
    key = new_key()
    path = tmp_path / "keys"
    path.write_text(f"# team keys\n{key_entry(key, 'initech', READ_ONLY)}  # read only\n")
    ring = KeyRing.load("", path)
    principal = ring.lookup(key)
    assert principal is not None and principal.tenant == "initech"


def test_blank_template_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker-compose and the Kubernetes Secret pass "" for credentials left blank.
    monkeypatch.setenv("RAGBUS_API_JWT_HS256_SECRET", "")
    monkeypatch.setenv("RAGBUS_API_KEYS_FILE", "")
    settings = ApiSecuritySettings()
    assert settings.jwt_hs256_secret is None and settings.keys_file is None
    with pytest.raises(ConfigError, match="no credential is configured"):
        Authenticator.from_settings(settings)


def test_api_key_create_prints_a_key_and_the_entry_that_accepts_it() -> None:
    from typer.testing import CliRunner

    from ragbus.cli.app import app

    result = CliRunner().invoke(app, ["api-key", "create", "--tenant", "acme", "--scope", "write", "--scope", "read"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.output.splitlines() if line.startswith(("key:", "entry:")))
    key, entry = lines["key"].strip(), lines["entry"].strip()
    principal = KeyRing.parse(entry, "RAGBUS_API_KEYS").lookup(key)
    assert principal is not None and principal.tenant == "acme" and principal.allows(Scope.WRITE)
    assert key not in entry
    refused = CliRunner().invoke(app, ["api-key", "create", "--tenant", "acme", "--scope", "admin"])
    assert refused.exit_code == 1


def test_the_api_refuses_to_start_when_auth_is_merely_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from query_api.app import create_app
    from ragbus.settings import load_settings

    for name in ("RAGBUS_API_AUTH", "RAGBUS_API_KEYS", "RAGBUS_API_KEYS_FILE", "RAGBUS_API_JWT_HS256_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RAGBUS_API_JWT_RS256_PUBLIC_KEY", raising=False)
    with pytest.raises(ConfigError, match="RAGBUS_API_AUTH is on"):
        create_app(load_settings())
    monkeypatch.setenv("RAGBUS_API_AUTH", "off")
    assert create_app(load_settings()).title  # explicitly off: starts (the demo and the test fixtures)
