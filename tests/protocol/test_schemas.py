"""The adapter protocol's JSON Schemas (ADP_01..ADP_04): well-formed, complete, and in step
with both adapters' field tables and the spec's code table."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from pgkms.errors import error_codes as reference_codes
from pgkms.tools.adapter import OPERATIONS
from pgkms_conformance.protocol import schema
from pgkms_independent.adapter import PARAMETERS
from pgkms_independent.failures import Code

pytestmark = pytest.mark.req("ADP_01", "ADP_02", "ADP_03", "ADP_04")

PROTOCOL_CODES = {"malformed_request", "unsupported_operation", "internal_error"}
LIBRARY_ONLY_CODES = {"input_invalid"}
OPS = [op for op in schema.operations() if op not in schema.SESSION_OPS]


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    names = schema.schema_names()
    assert "common.json" in names
    assert "error.json" in names
    for op in schema.operations():
        for direction in ("request", "response"):
            document = schema.load_schema(op, direction)
            Draft202012Validator.check_schema(document)
            assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert "pgkms-adapter/1" in document["$id"]


def test_every_operation_of_both_adapters_has_schemas() -> None:
    assert set(OPS) == set(OPERATIONS) == set(PARAMETERS)
    assert set(schema.SESSION_OPS) <= set(schema.operations())


@pytest.mark.parametrize("op", schema.operations())
def test_schema_fields_equal_the_adapters_accepted_fields(op: str) -> None:
    reference = OPERATIONS[op][0] if op in OPERATIONS else frozenset()
    independent = frozenset(PARAMETERS.get(op, {}))
    assert schema.request_fields(op) == reference == independent


@pytest.mark.parametrize("op", schema.operations())
def test_request_schemas_are_strict(op: str) -> None:
    document = schema.load_schema(op, "request")
    assert document["additionalProperties"] is False
    assert {"id", "op"} <= set(document["required"])
    success = schema.load_schema(op, "response")["oneOf"][0]
    assert success["additionalProperties"] is False
    assert success["properties"]["result"]["additionalProperties"] is False


def test_error_codes_are_the_spec_table_plus_the_protocol_codes() -> None:
    # input_invalid is the library's and the CLI's: both adapters check injected sizes first and
    # answer malformed_request, so it never travels in the protocol.
    expected = (set(reference_codes()) - LIBRARY_ONLY_CODES) | PROTOCOL_CODES
    assert schema.error_codes() == expected
    assert {c.value for c in Code} == expected


def test_a_violation_names_the_op_and_the_json_path() -> None:
    request = {"id": 1, "op": "bootstrap", "datadir": "/x", "passphrase": "00", "ivs": ["00"] * 3}
    with pytest.raises(schema.SchemaViolation) as caught:
        schema.validate_request("bootstrap", request)
    assert caught.value.op == "bootstrap"
    assert caught.value.direction == "request"
    assert caught.value.path == "$.ivs[0]"
    assert "bootstrap request: $.ivs[0]" in str(caught.value)


def test_a_violation_does_not_quote_the_value() -> None:
    secret = "ab" * 31  # a 31-byte "key": wrong size, and it must not be echoed
    request = {"id": 1, "op": "sql_unwrap", "sql_key": secret, "wrapped": ""}
    with pytest.raises(schema.SchemaViolation) as caught:
        schema.validate_request("sql_unwrap", request)
    assert secret not in str(caught.value)
    assert caught.value.path == "$.sql_key"


def test_response_violations_are_reported() -> None:
    with pytest.raises(schema.SchemaViolation) as caught:
        schema.validate_response("recover", {"id": 3, "ok": True, "result": {"decision": "x"}})
    assert caught.value.path == "$.result.decision"
    with pytest.raises(schema.SchemaViolation):
        schema.validate_response("wrap", {"id": 3, "ok": False, "error": {"code": "nope"}})
    with pytest.raises(schema.UnknownOperation):
        schema.validate_request("no_such_op", {"id": 1, "op": "no_such_op"})
