"""One root exception; transient vs permanent is a type, and it decides retry vs dead-letter."""

from __future__ import annotations

from schemas.errors import ContractError, UnsupportedSchemaVersion


class RagbusError(Exception):
    """Root of every error ragbus raises on purpose; `code` is stable and safe to show to users."""

    code = "ragbus_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigError(RagbusError):
    """A setting is missing or wrong; the message names the environment variable to fix."""

    code = "config_error"


class TransientError(RagbusError):
    """A dependency is unreachable or slow; retrying later may succeed. Never dead-lettered."""

    code = "transient"


class PermanentError(RagbusError):
    """The input itself is wrong; retrying cannot help. Consumers dead-letter it."""

    code = "permanent"


class InvalidMessage(PermanentError):
    """A message that cannot be decoded or fails its contract (poison message)."""

    code = "invalid_message"

    @staticmethod
    def from_contract(exc: ContractError) -> InvalidMessage:
        """The core's error for a contract's ContractError, with the same message and code."""
        error = UnknownSchemaVersion if isinstance(exc, UnsupportedSchemaVersion) else InvalidMessage
        return error(str(exc))


class UnknownSchemaVersion(InvalidMessage):
    """A message of a schema version this build does not understand."""

    code = "unknown_schema_version"


class InputError(RagbusError):
    """User input (files, CLI arguments, request fields) that ragbus refuses, with the reason."""

    code = "invalid_input"


class PortInUse(ConfigError):
    """A port the embedded stack needs is taken; the message names the port and the setting."""

    code = "port_in_use"
