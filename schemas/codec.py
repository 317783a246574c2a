"""orjson serialization of every contract, with versions checked on the way in."""

from __future__ import annotations

import json
from typing import TypeVar, get_args

import orjson
from pydantic import BaseModel, ValidationError

from schemas.errors import ContractError, UnsupportedSchemaVersion

M = TypeVar("M", bound=BaseModel)


def encode(message: BaseModel) -> bytes:
    """Serialize a contract to JSON bytes."""
    return orjson.dumps(message.model_dump(mode="json", exclude_none=False))


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def loads_exact(data: bytes | str) -> object:
    """JSON with integers kept exact: orjson reads an integer past 64 bits as a float, which would slip past the
    int64 bound (schemas.bounds) as a number of another type. For the boundaries (raw events, files)."""
    return json.loads(data, parse_constant=_no_constant)


def decode(data: bytes | None, model: type[M], *, exact_integers: bool = False) -> M:
    """Parse bytes into `model`; anything wrong is a ContractError (a poison message: dead-letter it).

    `exact_integers`: parse with loads_exact (what enters from outside: the documents topic).
    """
    if data is None:
        raise ContractError(f"empty value where a {model.__name__} was expected")
    try:
        raw = loads_exact(data) if exact_integers else orjson.loads(data)
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise ContractError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ContractError(f"expected a JSON object, got {type(raw).__name__}")
    field = model.model_fields.get("schema_version")
    if field is not None:
        # Every version the contract's Literal lists is understood; the default is what an absent field means.
        known = get_args(field.annotation) or (field.default,)
        if raw.get("schema_version", field.default) not in known:
            expected = " or ".join(map(str, known))
            raise UnsupportedSchemaVersion(
                f"{model.__name__} schema_version {raw.get('schema_version')!r} is not supported (expected {expected})"
            )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise ContractError(f"{model.__name__} contract violated: {details}") from None
