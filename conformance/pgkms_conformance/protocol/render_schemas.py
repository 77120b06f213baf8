"""The JSON Schemas of adapter protocol v1, generated from the definition.

One schema per request and per response of every operation, ``common.json`` (the hex shapes,
the shared types and the filesystem trace) and ``error.json`` (ADP_03), draft 2020-12 and
strict: every object is closed (``additionalProperties: false``). A request field the
definition marks optional may be absent or null; a result field marked optional may be absent.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pgkms_conformance.protocol.definition import TRACE_TYPE, Definition, Field, TypeSpec

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
HEX_PATTERN: Final = "^([0-9a-f]{2})*$"
NULL: Final = {"type": "null"}
Schema = dict[str, Any]


def _hex(spec: TypeSpec) -> Schema:
    """An inline hex shape (common.json's own definitions)."""
    schema: Schema = {"type": "string", "pattern": spec.pattern or HEX_PATTERN}
    if spec.pattern is None:
        low = spec.bytes if spec.bytes is not None else spec.min_bytes
        high = spec.bytes if spec.bytes is not None else spec.max_bytes
        if low is not None:
            schema["minLength"] = 2 * low
        if high is not None:
            schema["maxLength"] = 2 * high
    return schema


def type_schema(spec: TypeSpec, ref: str) -> Schema:
    """The schema of one type; ``ref`` prefixes references to common.json's $defs."""
    kind = spec.type
    if kind == "hex":
        if spec.pattern is None and spec.min_bytes is None and spec.max_bytes is None:
            return {"$ref": f"{ref}hex{spec.bytes if spec.bytes is not None else ''}"}
        return _hex(spec)
    if kind == "text":
        schema: Schema = {"type": "string"}
        if spec.min_length is not None:
            schema["minLength"] = spec.min_length
        if spec.pattern is not None:
            schema["pattern"] = spec.pattern
        return schema
    if kind == "integer":
        if spec.const is not None:
            return {"const": spec.const}
        schema = {"type": "integer"}
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
        return schema
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "seconds":
        schema = {"type": "number"}
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.exclusive_minimum is not None:
            schema["exclusiveMinimum"] = spec.exclusive_minimum
        return {"anyOf": [schema, NULL]} if spec.nullable else schema
    if kind == "enum":
        return {"const": spec.values[0]} if len(spec.values) == 1 else {"enum": list(spec.values)}
    if kind == "list":
        assert spec.items is not None  # checked by definition.parse
        schema = {"type": "array", "items": type_schema(spec.items, ref)}
        if spec.count is not None:
            schema["minItems"] = spec.count
            schema["maxItems"] = spec.count
        if spec.unique:
            schema["uniqueItems"] = True
        return schema
    return {"$ref": f"{ref}{kind}"}  # a named type or the trace


def _is_nullable(spec: TypeSpec, definition: Definition) -> bool:
    named = definition.types.get(spec.type)
    return spec.nullable or (named is not None and named.spec.nullable)


def field_schema(f: Field, definition: Definition, request: bool, ref: str) -> Schema:
    schema = type_schema(f.spec, ref)
    if request and f.optional and not _is_nullable(f.spec, definition):
        schema = {"anyOf": [schema, NULL]}
    return {"description": f.doc, **schema}


def _properties(
    fields: tuple[Field, ...], definition: Definition, request: bool, ref: str
) -> Schema:
    return {f.name: field_schema(f, definition, request, ref) for f in fields}


def _trace_schema(definition: Definition) -> Schema:
    ref = "#/$defs/"
    specific = sorted({name for op in definition.trace_ops for name in op.fields})
    conditions = []
    for op in definition.trace_ops:
        others = [name for name in specific if name not in op.fields]
        then: Schema = {}
        if op.fields:
            then["required"] = list(op.fields)
        if others:
            then["not"] = {"anyOf": [{"required": [name]} for name in others]}
        conditions.append({"if": {"properties": {"op": {"const": op.op}}}, "then": then})
    flag = next(f for f in definition.flags if f.name == TRACE_TYPE)
    return {
        "description": f"{', '.join(flag.requirements)} (capability {flag.name}): the mutating "
        "filesystem operations the operation performed, in order, each recorded after it "
        "succeeded; reads are not listed.",
        "type": "array",
        "items": {
            "type": "object",
            "required": [f.name for f in definition.trace_fields if not f.optional],
            "additionalProperties": False,
            "properties": _properties(definition.trace_fields, definition, False, ref),
            "allOf": conditions,
        },
    }


def common_schema(definition: Definition) -> Schema:
    defs: Schema = {"hex": {"type": "string", "pattern": HEX_PATTERN}}
    for size in definition.sizes_used():
        defs[f"hex{size}"] = _hex(TypeSpec("hex", bytes=size))
    for name, named in definition.types.items():
        if name == "hex":
            continue
        spec = named.spec
        inline = _hex(spec) if spec.type == "hex" else type_schema(spec, "#/$defs/")
        defs[name] = {"description": named.doc, **inline}
    defs[TRACE_TYPE] = _trace_schema(definition)
    return {
        "$schema": DRAFT,
        "$id": f"{definition.schema_id_base}common.json",
        "title": f"{definition.name} shared definitions",
        "description": "ADP_02: byte strings are lowercase hex with an even number of digits; "
        "sized variants pin the byte length.",
        "$defs": defs,
    }


def error_schema(definition: Definition) -> Schema:
    return {
        "$schema": DRAFT,
        "$id": f"{definition.schema_id_base}error.json",
        "title": f"{definition.name} error response",
        "description": f"ADP_03: {definition.errors_doc} id is null when the request's id "
        "could not be read.",
        "type": "object",
        "required": ["id", "ok", "error"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": ["integer", "null"]},
            "ok": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": False,
                "properties": {
                    "code": {"enum": list(definition.error_codes)},
                    "message": {"type": "string"},
                },
            },
        },
    }


def request_schema(definition: Definition, op_name: str) -> Schema:
    op = definition.operation(op_name)
    ref = "common.json#/$defs/"
    return {
        "$schema": DRAFT,
        "$id": f"{definition.schema_id_base}{op.name}.request.json",
        "title": f"{definition.name} {op.name} request",
        "description": op.schema_note,
        "type": "object",
        "required": ["id", "op", *(f.name for f in op.request if not f.optional)],
        "properties": {
            "id": {"type": "integer"},
            "op": {"const": op.name},
            **_properties(op.request, definition, True, ref),
        },
        "additionalProperties": False,
    }


def response_schema(definition: Definition, op_name: str) -> Schema:
    op = definition.operation(op_name)
    ref = "common.json#/$defs/"
    success = {
        "type": "object",
        "required": ["id", "ok", "result"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "ok": {"const": True},
            "result": {
                "type": "object",
                "required": [f.name for f in op.result if not f.optional],
                "properties": _properties(op.result, definition, False, ref),
                "additionalProperties": False,
            },
        },
    }
    return {
        "$schema": DRAFT,
        "$id": f"{definition.schema_id_base}{op.name}.response.json",
        "title": f"{definition.name} {op.name} response",
        "description": op.result_note,
        "oneOf": [success, {"$ref": "error.json"}],
    }


def all_schemas(definition: Definition) -> dict[str, Schema]:
    """File name -> schema, for every file of ``protocol/schemas/v1``."""
    schemas = {"common.json": common_schema(definition), "error.json": error_schema(definition)}
    for op in definition.operations:
        schemas[f"{op.name}.request.json"] = request_schema(definition, op.name)
        schemas[f"{op.name}.response.json"] = response_schema(definition, op.name)
    return dict(sorted(schemas.items()))


def dump(schema: Schema) -> str:
    """A schema file's text: two-space indentation, keys in the generator's order."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
