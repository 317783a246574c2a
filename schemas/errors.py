"""The contracts' own error: the schemas depend on nothing of ragbus, so they do not raise its errors.

The core maps it into its hierarchy where it matters (`ragbus.errors.InvalidMessage.from_contract`): a message
that breaks its contract is permanent, and is dead-lettered with `code`.
"""

from __future__ import annotations


class ContractError(ValueError):
    """A message that cannot be decoded or breaks its contract (a poison message); `code` is stable."""

    code = "invalid_message"


class UnsupportedSchemaVersion(ContractError):
    """A message of a schema version this build does not understand."""

    code = "unknown_schema_version"
