"""The JSON Schemas of adapter protocol v1 (``pgkms-adapter/1``), loaded from package data.

One schema per request and per response of every operation, plus ``common.json`` (hex shapes)
and ``error.json`` (ADP_03), all draft 2020-12 and strict (``additionalProperties: false``).
They are generated from the protocol's definition, ``spec/adapter-protocol.toml``
(``pgkms-conformance protocol generate``); edit the definition, never the files.
``validate_request`` / ``validate_response`` raise ``SchemaViolation`` naming the operation,
the direction and the JSON path of the first offending value.

The violation message describes where and which rule failed; it deliberately does not quote
the offending value, which could be a key or a passphrase.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_VERSION = "pgkms-adapter/1"
SCHEMA_DIR = ("schemas", "v1")
Direction = Literal["request", "response"]

# The operations the schemas describe, besides the session ops hello and shutdown.
SESSION_OPS = ("hello", "shutdown")


class SchemaViolation(Exception):
    """A protocol message does not match its schema."""

    def __init__(self, op: str, direction: str, path: str, rule: str) -> None:
        super().__init__(f"{op} {direction}: {path}: violates {rule}")
        self.op = op
        self.direction = direction
        self.path = path
        self.rule = rule


class UnknownOperation(SchemaViolation):
    def __init__(self, op: str, direction: str) -> None:
        super().__init__(op, direction, "$.op", "the list of operations with a schema")


def _schema_files() -> dict[str, Any]:
    folder = resources.files("pgkms_conformance.protocol").joinpath(*SCHEMA_DIR)
    return {
        entry.name: json.loads(entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


@cache
def _loaded() -> tuple[dict[str, Any], Registry[Any]]:
    schemas = _schema_files()
    registry: Registry[Any] = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in schemas.values()
    )
    return schemas, registry


def schema_names() -> list[str]:
    return sorted(_loaded()[0])


def operations() -> list[str]:
    """Every operation with a request schema (session ops included), in sorted order."""
    suffix = ".request.json"
    return sorted(name[: -len(suffix)] for name in _loaded()[0] if name.endswith(suffix))


def load_schema(op: str, direction: Direction) -> dict[str, Any]:
    schemas, _ = _loaded()
    name = f"{op}.{direction}.json"
    if name not in schemas:
        raise UnknownOperation(op, direction)
    document: dict[str, Any] = schemas[name]
    return document


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _validate(op: str, direction: Direction, message: object) -> None:
    schema = load_schema(op, direction)
    validator = Draft202012Validator(schema, registry=_loaded()[1])
    error = next(iter(sorted(validator.iter_errors(message), key=lambda e: list(e.path))), None)
    if error is None:
        return
    # For a oneOf (success or error envelope), name the deepest failing branch: more useful.
    deepest = error
    if error.context:
        deepest = max(error.context, key=lambda e: len(list(e.absolute_path)))
    rule = f"{deepest.validator} ({'/'.join(str(p) for p in deepest.absolute_schema_path)})"
    raise SchemaViolation(op, direction, _json_path(deepest.absolute_path), rule)


def validate_request(op: str, message: object) -> None:
    """Raise ``SchemaViolation`` unless ``message`` is a valid ``op`` request."""
    _validate(op, "request", message)


def validate_response(op: str, message: object) -> None:
    """Raise ``SchemaViolation`` unless ``message`` is a valid response to an ``op`` request."""
    _validate(op, "response", message)


def request_fields(op: str) -> frozenset[str]:
    """The parameters an ``op`` request accepts besides ``id`` and ``op``."""
    return frozenset(load_schema(op, "request")["properties"]) - {"id", "op"}


def error_codes() -> frozenset[str]:
    """Every code an error response may carry (ADP_03)."""
    error = _loaded()[0]["error.json"]
    return frozenset(error["properties"]["error"]["properties"]["code"]["enum"])
