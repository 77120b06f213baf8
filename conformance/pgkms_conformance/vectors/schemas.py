"""One strict JSON Schema (draft 2020-12) per vector family (VEC_01), built from the op table.

Every object in a vector file is closed (``additionalProperties: false``). A family's schema
pins its name, its ops, and its flags (each flag must be explained in ``notes``); the input and
expected fields of each op are typed, byte strings are lowercase hex with an exact length where
the format fixes one. What a schema cannot say (``numberOfTests`` equals the number of tests,
``tcId`` runs 1..N, every ``id`` is the hash of its op and input, every used flag is in
``notes``) ``runner.load_vector_file`` checks after validating.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pgkms_conformance.ids import CITABLE_PATTERN

Schema = dict[str, Any]

HEX: Final[Schema] = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
PURPOSE: Final[Schema] = {"enum": ["bootstrap", "startup", "rotation"]}


def hex_bytes(n: int) -> Schema:
    return {"type": "string", "pattern": f"^[0-9a-f]{{{2 * n}}}$"}


def hex_list(n: int, size: int) -> Schema:
    return {"type": "array", "items": hex_bytes(size), "minItems": n, "maxItems": n}


LISTING: Final[Schema] = {
    "type": "object",
    "description": "relative path -> entry; directories end with '/'; modes are decimal",
    "patternProperties": {
        "^[^/].*/$": {
            "type": "object",
            "properties": {"mode": {"type": "integer", "minimum": 0, "maximum": 4095}},
            "additionalProperties": False,
        },
        "^[^/].*[^/]$|^[^/]$": {
            "type": "object",
            "properties": {
                "mode": {"type": "integer", "minimum": 0, "maximum": 4095},
                "content": HEX,
            },
            "required": ["content"],
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

# op -> (input properties, required inputs, expected properties, required expected fields)
OPS: Final[dict[str, tuple[Schema, list[str], Schema, list[str]]]] = {
    "derive_kek": (
        {"passphrase": HEX},
        ["passphrase"],
        {"enc_key": hex_bytes(32), "mac_key": hex_bytes(32)},
        ["enc_key", "mac_key"],
    ),
    "wrap": (
        {"enc_key": hex_bytes(32), "mac_key": hex_bytes(32), "plaintext": HEX, "iv": hex_bytes(16)},
        ["enc_key", "mac_key", "plaintext"],
        {"wrapped": HEX},
        ["wrapped"],
    ),
    "unwrap": (
        {"enc_key": hex_bytes(32), "mac_key": hex_bytes(32), "wrapped": HEX},
        ["enc_key", "mac_key", "wrapped"],
        {"plaintext": HEX},
        ["plaintext"],
    ),
    "encode_record": (
        {"key_id": {"type": "integer", "minimum": 0}, "wrapped_key": hex_bytes(128)},
        ["key_id", "wrapped_key"],
        {"record": HEX},
        ["record"],
    ),
    "decode_record": (
        {"record": HEX, "file_id": {"type": ["integer", "null"], "minimum": 0}},
        ["record", "file_id"],
        {"key_id": {"type": "integer", "minimum": 0}, "wrapped_key": hex_bytes(128)},
        ["key_id", "wrapped_key"],
    ),
    "substitute": (
        {"command": {"type": "string"}},
        ["command"],
        {"command": {"type": "string"}},
        ["command"],
    ),
    "run_passphrase_command": (
        {"command": {"type": "string"}, "purpose": PURPOSE},
        ["command", "purpose"],
        {"passphrase": HEX},
        ["passphrase"],
    ),
    "check_passphrase": (
        {"passphrase": HEX, "purpose": PURPOSE},
        ["passphrase", "purpose"],
        {"passphrase": HEX},
        ["passphrase"],
    ),
    "bootstrap": (
        {"datadir": LISTING, "passphrase": HEX, "keys": hex_list(3, 64), "ivs": hex_list(3, 16)},
        ["datadir", "passphrase"],
        {"datadir": LISTING},
        ["datadir"],
    ),
    "startup": (
        {"datadir": LISTING, "passphrase": HEX},
        ["datadir", "passphrase"],
        {"keys": hex_list(3, 64), "datadir": LISTING},
        ["keys"],
    ),
    "rotate": (
        {
            "datadir": LISTING,
            "old_passphrase": HEX,
            "new_passphrase": HEX,
            "ivs": hex_list(3, 16),
        },
        ["datadir", "old_passphrase", "new_passphrase"],
        {"datadir": LISTING},
        ["datadir"],
    ),
    "recover": (
        {"datadir": LISTING, "passphrase": HEX},
        ["datadir", "passphrase"],
        {"decision": {"enum": ["nothing", "discard_tmp", "adopt_tmp"]}, "datadir": LISTING},
        ["decision"],
    ),
    "sql_wrap": (
        {"sql_key": hex_bytes(64), "plaintext": HEX, "iv": hex_bytes(16)},
        ["sql_key", "plaintext"],
        {"wrapped": HEX},
        ["wrapped"],
    ),
    "sql_unwrap": (
        {"sql_key": hex_bytes(64), "wrapped": HEX},
        ["sql_key", "wrapped"],
        {"plaintext": HEX},
        ["plaintext"],
    ),
    # Pseudo-op: expanded by runners into `count` wrap requests (see accumulated.py).
    "accumulated_wrap": (
        {
            "count": {"type": "integer", "minimum": 1},
            "label": {"type": "string"},
            "maxPlaintextLength": {"type": "integer", "minimum": 0, "maximum": 65535},
        },
        ["count", "label", "maxPlaintextLength"],
        {"digest": hex_bytes(32)},
        ["digest"],
    ),
}


def _closed(properties: Schema, required: Iterable[str]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(required),
        "additionalProperties": False,
    }


def _per_op(op: str) -> Schema:
    inputs, required_in, outputs, required_out = OPS[op]
    after_failure = _closed({"datadir": LISTING}, ["datadir"])
    return {
        "if": {"properties": {"op": {"const": op}}},
        "then": {
            "properties": {"input": _closed(inputs, required_in)},
            "allOf": [
                {
                    "if": {"properties": {"result": {"const": "invalid"}}},
                    "then": {"properties": {"expected": after_failure}},
                    "else": {"properties": {"expected": _closed(outputs, required_out)}},
                }
            ],
        },
    }


def family_schema(
    family: str,
    schema_name: str,
    ops: Iterable[str],
    flags: Iterable[str],
    group_fields: Schema | None = None,
) -> Schema:
    """The schema of one family's file."""
    ops = sorted(set(ops))
    flags = sorted(set(flags))
    test = {
        "type": "object",
        "properties": {
            "tcId": {"type": "integer", "minimum": 1},
            "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
            "comment": {"type": "string"},
            "flags": {"type": "array", "items": {"enum": flags}, "uniqueItems": True},
            "requirements": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {
                    "type": "string",
                    "pattern": CITABLE_PATTERN,
                },
            },
            "op": {"enum": ops},
            "input": {"type": "object"},
            "result": {"enum": ["valid", "invalid", "acceptable"]},
            "expected": {"type": "object"},
            "error": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        },
        "required": ["tcId", "id", "comment", "flags", "requirements", "op", "input", "result"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"result": {"const": "valid"}}},
                "then": {"required": ["expected"], "not": {"required": ["error"]}},
            },
            {
                "if": {"properties": {"result": {"const": "invalid"}}},
                "then": {"required": ["error"]},
            },
            {
                "if": {"properties": {"result": {"const": "acceptable"}}},
                "then": {"anyOf": [{"required": ["expected"]}, {"required": ["error"]}]},
            },
            *(_per_op(op) for op in ops),
        ],
    }
    group = _closed(
        {
            "type": {"type": "string"},
            "comment": {"type": "string"},
            **(group_fields or {}),
            "tests": {"type": "array", "items": test},
        },
        ["type", "tests"],
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://pgkms.example/vectors/schemas/{schema_name}",
        "title": f"pgkms test vectors: {family}",
        "type": "object",
        "properties": {
            "schema": {"const": schema_name},
            "version": {"const": "1"},
            "family": {"const": family},
            "generator": {"type": "string"},
            "numberOfTests": {"type": "integer", "minimum": 0},
            "header": {"type": "array", "items": {"type": "string"}},
            "notes": _closed({f: {"type": "string", "minLength": 1} for f in flags}, flags),
            "testGroups": {"type": "array", "items": group},
        },
        "required": [
            "schema",
            "version",
            "family",
            "numberOfTests",
            "header",
            "notes",
            "testGroups",
        ],
        "additionalProperties": False,
    }


def schema_for_document(doc: dict[str, Any], group_fields: Schema | None = None) -> Schema:
    """The schema for a generated document: its family, its ops, its flags."""
    ops = {t["op"] for g in doc["testGroups"] for t in g["tests"]}
    return family_schema(doc["family"], doc["schema"], ops, doc["notes"], group_fields)
