"""Both adapters answer every operation with a schema-valid response, on success and on
failure (ADP_01..ADP_04), and turn every malformed request into ``malformed_request`` without
any effect on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pgkms import InternalKeys, Secret, WrapKeys, pg_wrap, wrap
from pgkms.randomness import ScriptedRandom
from pgkms_conformance.protocol import schema
from pgkms_conformance.protocol.client import AdapterClient

pytestmark = pytest.mark.req("ADP_01", "ADP_02", "ADP_03", "ADP_04")

PASS = (b"p" * 70).hex()
OTHER = (b"q" * 70).hex()
ENC, MAC = "11" * 32, "22" * 32
IV = "33" * 16
SQL_KEY = "44" * 64
KEYS = ["55" * 64, "66" * 64, "77" * 64]
IVS = ["88" * 16, "99" * 16, "aa" * 16]
WRAPPED_EMPTY_LEN = 64
# Values to unwrap successfully (made by the reference; the differential tests check that the
# independent implementation makes the same bytes).
WRAPPED = wrap(
    WrapKeys(Secret(bytes.fromhex(ENC)), Secret(bytes.fromhex(MAC))),
    Secret(b"abc"),
    ScriptedRandom([bytes.fromhex(IV)]),
).hex()
SQL_WRAPPED = pg_wrap(
    InternalKeys(Secret(bytes.fromhex(SQL_KEY)), Secret(b""), Secret(b"")),
    Secret(b"abc"),
    ScriptedRandom([bytes.fromhex(IV)]),
).hex()


def call(client: AdapterClient, request: dict[str, Any]) -> dict[str, Any]:
    """Send a request, check it and its response against the schemas, return the response."""
    op = request["op"]
    response = client.send_raw(json.dumps(request))
    schema.validate_response(op, response)
    assert response["id"] == request["id"]
    return response


def scenario(datadir: Path, spare: Path) -> list[tuple[dict[str, Any], str | None]]:
    """(request, expected error code or None for success), in order: a success and a failure
    for every operation."""
    d, s = str(datadir), str(spare)
    unwrap_ok = {"op": "sql_wrap", "sql_key": SQL_KEY, "plaintext": "00", "iv": IV}
    steps: list[tuple[dict[str, Any], str | None]] = [
        ({"op": "hello"}, None),
        ({"op": "derive_kek", "passphrase": PASS}, None),
        ({"op": "derive_kek", "passphrase": "0"}, "malformed_request"),
        ({"op": "wrap", "enc_key": ENC, "mac_key": MAC, "plaintext": "", "iv": IV}, None),
        ({"op": "wrap", "enc_key": ENC, "mac_key": MAC, "plaintext": "0102"}, None),
        ({"op": "wrap", "enc_key": ENC[2:], "mac_key": MAC, "plaintext": ""}, "malformed_request"),
        (
            {"op": "unwrap", "enc_key": ENC, "mac_key": MAC, "wrapped": "00" * 63},
            "wrapped_too_short",
        ),
        (
            {"op": "unwrap", "enc_key": ENC, "mac_key": MAC, "wrapped": "00" * 65},
            "wrapped_length_invalid",
        ),
        ({"op": "unwrap", "enc_key": ENC, "mac_key": MAC, "wrapped": "00" * 64}, "hmac_mismatch"),
        ({"op": "unwrap", "enc_key": ENC, "mac_key": MAC, "wrapped": WRAPPED}, None),
        ({"op": "encode_record", "key_id": 2, "wrapped_key": "ab" * 128}, None),
        ({"op": "encode_record", "key_id": -1, "wrapped_key": "ab" * 128}, "malformed_request"),
        ({"op": "decode_record", "record": "02000000" + "ab" * 128, "file_id": None}, None),
        (
            {"op": "decode_record", "record": "02000000" + "ab" * 128, "file_id": 1},
            "record_id_mismatch",
        ),
        ({"op": "decode_record", "record": "03000000" + "ab" * 128}, "record_id_invalid"),
        ({"op": "decode_record", "record": "00"}, "record_size_invalid"),
        ({"op": "substitute", "command": "echo %p %% %x %"}, None),
        ({"op": "substitute", "command": 5}, "malformed_request"),
        (
            {"op": "run_passphrase_command", "command": "printf %070d 0", "purpose": "bootstrap"},
            None,
        ),
        (
            {"op": "run_passphrase_command", "command": "exit 3", "purpose": "startup"},
            "passphrase_command_failed",
        ),
        (
            {"op": "run_passphrase_command", "command": "echo hi", "purpose": "startup"},
            "passphrase_too_short",
        ),
        # Regression: a NUL byte in the command was an internal_error in the reference.
        (
            {"op": "run_passphrase_command", "command": "a\u0000b", "purpose": "startup"},
            "passphrase_command_failed",
        ),
        # Regression: a path the OS cannot take was an internal_error in the reference.
        ({"op": "startup", "datadir": "a\u0000b", "passphrase": PASS}, "storage_error"),
        ({"op": "startup", "datadir": "\ud800", "passphrase": PASS}, "storage_error"),
        ({"op": "check_passphrase", "passphrase": "61" * 2000, "purpose": "startup"}, None),
        (
            {"op": "check_passphrase", "passphrase": "61" * 2000, "purpose": "rotation"},
            "passphrase_too_long",
        ),
        ({"op": "check_passphrase", "passphrase": PASS, "purpose": "later"}, "malformed_request"),
        ({"op": "bootstrap", "datadir": d, "passphrase": PASS, "keys": KEYS, "ivs": IVS}, None),
        ({"op": "bootstrap", "datadir": d, "passphrase": PASS}, "keys_already_exist"),
        ({"op": "bootstrap", "datadir": s, "passphrase": "61" * 63}, "passphrase_too_short"),
        ({"op": "startup", "datadir": d, "passphrase": PASS}, None),
        ({"op": "startup", "datadir": d, "passphrase": OTHER}, "wrong_passphrase"),
        ({"op": "startup", "datadir": s, "passphrase": PASS}, "key_directory_missing"),
        (
            {
                "op": "rotate",
                "datadir": d,
                "old_passphrase": PASS,
                "new_passphrase": OTHER,
                "ivs": IVS,
            },
            None,
        ),
        (
            {"op": "rotate", "datadir": d, "old_passphrase": PASS, "new_passphrase": OTHER},
            "wrong_passphrase",
        ),
        ({"op": "recover", "datadir": d, "passphrase": OTHER}, None),
        ({"op": "recover", "datadir": d, "passphrase": "00"}, "passphrase_too_short"),
        ({"op": "recover", "datadir": d, "passphrase": OTHER, "trace_fs": True}, None),
        ({"op": "startup", "datadir": d, "passphrase": OTHER, "trace_fs": True}, None),
        ({"op": "bootstrap", "datadir": s, "passphrase": PASS, "trace_fs": True}, None),
        (
            {"op": "upgrade_keys", "old_datadir": d, "new_datadir": s, "passphrase": PASS},
            "wrong_passphrase",
        ),
        ({"op": "upgrade_keys", "old_datadir": d, "new_datadir": s, "passphrase": OTHER}, None),
        (
            {
                "op": "rotate",
                "datadir": s,
                "old_passphrase": OTHER,
                "new_passphrase": PASS,
                "trace_fs": True,
            },
            None,
        ),
        (unwrap_ok, None),
        ({"op": "sql_wrap", "sql_key": SQL_KEY[2:], "plaintext": ""}, "malformed_request"),
        ({"op": "sql_unwrap", "sql_key": SQL_KEY, "wrapped": SQL_WRAPPED}, None),
        ({"op": "sql_unwrap", "sql_key": SQL_KEY, "wrapped": "00" * 10}, "wrapped_too_short"),
        ({"op": "no_such_op"}, "unsupported_operation"),
    ]
    return [({"id": i + 1, **req}, code) for i, (req, code) in enumerate(steps)]


def test_every_operation_succeeds_and_fails_with_valid_responses(
    adapter: AdapterClient, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "spare").mkdir()
    seen_ok: set[str] = set()
    seen_error: set[str] = set()
    for request, expected in scenario(tmp_path / "data", tmp_path / "spare"):
        response = call(adapter, request) if request["op"] != "no_such_op" else None
        if response is None:  # no schema for an unknown op: check the envelope only
            response = adapter.send_raw(json.dumps(request))
            schema.validate_response("hello", response)  # error.json via any op's oneOf
        if expected is None:
            assert response["ok"] is True, (request["op"], response)
            seen_ok.add(request["op"])
        else:
            assert response["ok"] is False, (request["op"], response)
            assert response["error"]["code"] == expected, request["op"]
            seen_error.add(request["op"])
    ops = set(schema.operations()) - {"shutdown"}
    assert ops <= seen_ok
    assert ops - {"hello"} <= seen_error


def test_results_carry_the_expected_values(adapter: AdapterClient, tmp_path: Path) -> None:
    d = str(tmp_path)
    boot = {"id": 1, "op": "bootstrap", "datadir": d, "passphrase": PASS, "keys": KEYS}
    assert call(adapter, boot)["ok"]  # keys injected, IVs from the CSPRNG
    started = call(adapter, {"id": 2, "op": "startup", "datadir": d, "passphrase": PASS})
    assert started["result"]["keys"] == KEYS
    wrap = {"id": 3, "op": "sql_wrap", "sql_key": SQL_KEY, "plaintext": "616263", "iv": IV}
    wrapped = call(adapter, wrap)["result"]["wrapped"]
    assert len(wrapped) == 2 * WRAPPED_EMPTY_LEN
    assert wrapped[64:96] == IV
    back = {"id": 4, "op": "sql_unwrap", "sql_key": SQL_KEY, "wrapped": wrapped}
    assert call(adapter, back)["result"]["plaintext"] == "616263"


# ADP_04, ADP_06: the feature flags the protocol defines
FEATURES = {"inject_randomness", "fs_trace", "concurrency", "passphrase_timeout"}


@pytest.mark.req("ADP_04", "ADP_06")
def test_hello_announces_every_operation(adapter: AdapterClient) -> None:
    hello = adapter.hello()
    ops = set(schema.operations()) - set(schema.SESSION_OPS)
    assert ops | {"inject_randomness", "fs_trace"} <= hello.capabilities
    assert hello.capabilities - ops <= FEATURES
    if hello.implementation == "pgkms-reference":
        assert {"concurrency", "passphrase_timeout"} <= hello.capabilities
    assert hello.protocol == 1


def malformed_variants(request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Requests that break the op's schema in one way each."""
    op = request["op"]
    required = set(schema.load_schema(op, "request")["required"]) - {"id", "op"}
    out: list[tuple[str, dict[str, Any]]] = [("extra field", {**request, "extra": 1})]
    for name, value in request.items():
        if name in ("id", "op"):
            continue
        if name in required:
            out.append((f"{name} missing", {k: v for k, v in request.items() if k != name}))
        wrong_values: tuple[object, ...] = (True, 1.5, [], {})
        for wrong in wrong_values:
            out.append((f"{name} as {type(wrong).__name__}", {**request, name: wrong}))
        if isinstance(value, str) and name not in ("datadir", "command", "purpose"):
            out.append((f"{name} upper-case hex", {**request, name: "AB" + value}))
            out.append((f"{name} odd hex", {**request, name: value + "0"}))
            out.append((f"{name} prefixed hex", {**request, name: "0x" + value}))
        if isinstance(value, list):
            out.append((f"{name} short list", {**request, name: value[:2]}))
            out.append((f"{name} wrong item size", {**request, name: [v + "00" for v in value]}))
    return out


@pytest.mark.parametrize(
    "base",
    [
        {"op": "bootstrap", "datadir": "DATADIR", "passphrase": PASS, "keys": KEYS, "ivs": IVS},
        {
            "op": "rotate",
            "datadir": "DATADIR",
            "old_passphrase": PASS,
            "new_passphrase": OTHER,
            "ivs": IVS,
        },
        {"op": "wrap", "enc_key": ENC, "mac_key": MAC, "plaintext": "00", "iv": IV},
        {"op": "encode_record", "key_id": 1, "wrapped_key": "ab" * 128},
        {"op": "decode_record", "record": "01000000" + "ab" * 128, "file_id": 1},
        {"op": "run_passphrase_command", "command": "true", "purpose": "startup"},
        {"op": "sql_unwrap", "sql_key": SQL_KEY, "wrapped": "00" * 64},
        {"op": "hello"},
    ],
    ids=lambda b: str(b["op"]),
)
def test_malformed_requests_are_refused_without_effect(
    adapter: AdapterClient, tmp_path: Path, base: dict[str, Any]
) -> None:
    base = {"id": 7, **{k: str(tmp_path) if v == "DATADIR" else v for k, v in base.items()}}
    for label, request in malformed_variants(base):
        with pytest.raises(schema.SchemaViolation):
            schema.validate_request(request["op"], request)
        response = adapter.send_raw(json.dumps(request))
        schema.validate_response(request["op"], response)
        assert response["ok"] is False, label
        assert response["error"]["code"] == "malformed_request", label
    assert list(tmp_path.iterdir()) == []  # nothing was written


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b"[1,2]",
        b'"text"',
        b"\xff\xfe",
        b"{",
        b'{"op":"hello"}',
        b'{"id":"1","op":"hello"}',
        b'{"id":true,"op":"hello"}',
        b'{"id":1}',
        b'{"id":1,"op":5}',
        b"[" * 50000 + b"]" * 50000,
        b'\xef\xbb\xbf{"id":1,"op":"hello"}',
    ],
)
def test_garbage_lines_get_malformed_request(adapter: AdapterClient, line: bytes) -> None:
    if not line:
        return  # blank lines are skipped by both adapters; sending one would wait forever
    response = adapter.send_raw_bytes(line + b"\n")
    schema.validate_response("hello", response)
    assert response["error"]["code"] == "malformed_request"
    assert adapter.hello().protocol == 1  # and the session goes on


@pytest.mark.req("UPG_01")
def test_upgrade_into_a_cluster_without_keys_is_refused_before_writing(
    adapter: AdapterClient, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    boot = {"id": 1, "op": "bootstrap", "datadir": str(old), "passphrase": PASS}
    assert call(adapter, boot)["ok"]
    upgrade = {"id": 2, "op": "upgrade_keys", "old_datadir": str(old),
               "new_datadir": str(new), "passphrase": PASS}  # fmt: skip
    response = call(adapter, upgrade)
    assert response["error"]["code"] == "key_directory_missing"
    assert [p.name for p in new.iterdir() if p.name != "pg_cryptokeys.lock"] == []
