"""One strict JSON Schema (draft 2020-12) per vector family (VEC_01), built from the op table.

Every object in a vector file is closed (``additionalProperties: false``). A family's schema
pins its name and its ops; the input and expected fields of each op are typed, byte strings are
lowercase hex with an exact length where the format fixes one. The family's own flags must be
explained in ``notes``, each with its bug type and effect (``triage``); a file from elsewhere may
add flags of its own, each with at least a description. Optional fields say where a file comes
from (``source``) and what its source system did where that differs from the expected result
(a test's ``observed``); runners report them and never judge by them. What a schema cannot say
(``numberOfTests`` equals the number of tests, ``tcId`` runs 1..N, every ``id`` is the hash of
its op and input, every used flag is in ``notes``) ``runner.load_vector_file`` checks after
validating.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pgkms_conformance.ids import CITABLE_PATTERN
from pgkms_conformance.vectors.triage import BUG_TYPE_PATTERN, BUG_TYPES, FLAG_PATTERN

Schema = dict[str, Any]

HEX: Final[Schema] = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
ERROR_CODE: Final[Schema] = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
TEXT: Final[Schema] = {"type": "string", "minLength": 1}
ONE_LINE: Final[Schema] = {"type": "string", "minLength": 1, "not": {"pattern": "\\n"}}
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
        {"datadir": LISTING, "passphrase": HEX, "passphrase_command": {"type": "string"}},
        ["datadir"],
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
    "upgrade_keys": (
        {"old_datadir": LISTING, "new_datadir": LISTING, "passphrase": HEX},
        ["old_datadir", "new_datadir", "passphrase"],
        {"old_datadir": LISTING, "new_datadir": LISTING},
        ["old_datadir", "new_datadir"],
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
# The request fields that name a data directory: a vector gives each as a listing.
DIRECTORY_FIELDS: Final = ("datadir", "old_datadir", "new_datadir")
# op -> input fields of which exactly one must be given (a startup's passphrase, or the command
# that prints it: ``composed``).
ONE_OF_INPUTS: Final[dict[str, tuple[str, ...]]] = {
    "startup": ("passphrase", "passphrase_command"),
}

NOTE: Final[Schema] = {
    "type": "object",
    "description": "a flag of the family: what it means, its bug type, the effect of failing it",
    "properties": {"bugType": {"enum": list(BUG_TYPES)}, "description": TEXT, "effect": ONE_LINE},
    "required": ["bugType", "description", "effect"],
    "additionalProperties": False,
}
FREE_NOTE: Final[Schema] = {
    "type": "object",
    "description": "a flag a file from elsewhere adds: a description, a bug type if known",
    "properties": {
        "bugType": {"type": "string", "pattern": BUG_TYPE_PATTERN},
        "description": TEXT,
        "effect": ONE_LINE,
    },
    "required": ["description"],
    "additionalProperties": False,
}
SOURCE: Final[Schema] = {
    "type": "object",
    "description": "provenance: who or what produced the vectors, which version, where from",
    "properties": {
        "name": TEXT,
        "version": TEXT,
        "url": {"type": "string", "pattern": "^https?://"},
        "description": TEXT,
    },
    "required": ["name"],
    "additionalProperties": False,
}
OBSERVED: Final[Schema] = {
    "type": "object",
    "description": "what the source system did, where it differs from the expected result",
    "properties": {
        "description": TEXT,
        "result": {"enum": ["valid", "invalid"]},
        "error": ERROR_CODE,
    },
    "required": ["description"],
    "additionalProperties": False,
}


def _closed(properties: Schema, required: Iterable[str]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(required),
        "additionalProperties": False,
    }


def _input(op: str) -> Schema:
    inputs, required_in, _, _ = OPS[op]
    schema = _closed(inputs, required_in)
    choice = ONE_OF_INPUTS.get(op)
    if choice:
        schema["oneOf"] = [{"required": [name]} for name in choice]
    return schema


def _per_op(op: str) -> Schema:
    inputs, _, outputs, required_out = OPS[op]
    directories = [f for f in DIRECTORY_FIELDS if f in inputs]
    after_failure = _closed({f: LISTING for f in directories}, directories)
    return {
        "if": {"properties": {"op": {"const": op}}},
        "then": {
            "properties": {"input": _input(op)},
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
            "flags": {
                "type": "array",
                "items": {"type": "string", "pattern": FLAG_PATTERN},
                "uniqueItems": True,
            },
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
            "error": ERROR_CODE,
            "observed": OBSERVED,
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
            "source": SOURCE,
            "notes": {
                "type": "object",
                "properties": {f: NOTE for f in flags},
                "required": flags,
                "propertyNames": {"pattern": FLAG_PATTERN},
                "additionalProperties": FREE_NOTE,
            },
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
