"""Fuzzing every parser with generated malformed input, on both implementations.

Each input must end in a typed error with a stable code or a correct result, never in an
unexpected exception (the ``twins`` outcomes let any other exception escape and fail the test),
and both implementations must reach the same outcome. The number of inputs tried per parser is
printed at the end of the run (``conftest.count``).
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.protocol import schema
from pgkms_conformance.protocol.client import AdapterClient

from tests.differential.fuzz_counts import count
from tests.differential.test_bytes import tree
from tests.differential.twins import INDEPENDENT, REFERENCE

ENC, MAC = bytes(range(32)), bytes(range(32, 64))
PASS = b"a passphrase that satisfies the sixty-four byte minimum length rule"


def near(valid: bytes) -> st.SearchStrategy[bytes]:
    """Inputs close to a valid one: bit flips, cuts, extensions, splices, or anything."""
    return st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.binary(min_size=1, max_size=40).map(lambda tail: valid + tail),
        st.tuples(st.integers(0, len(valid) * 8 - 1), st.integers(1, 3)).map(
            lambda t: bytes(
                b ^ (1 << (t[0] % 8)) if i == t[0] // 8 else b for i, b in enumerate(valid)
            )
        ),
    )


def _made(value: object) -> bytes:
    assert isinstance(value, bytes)
    return value


_WRAPPED = _made(REFERENCE.wrap(ENC, MAC, b"the plaintext", bytes(16)).value)
_RECORD = _made(REFERENCE.encode_record(1, bytes(range(128))).value)


@pytest.mark.req("WRAP_05", "WRAP_06", "WRAP_07", "WRAP_08", "SQL_02", "SQL_03")
@given(blob=near(_WRAPPED))
def test_fuzz_wrapped_value_parser(blob: bytes) -> None:
    count("wrapped value")
    ref = REFERENCE.unwrap(ENC, MAC, blob)
    assert ref == INDEPENDENT.unwrap(ENC, MAC, blob)
    assert REFERENCE.sql_unwrap(ENC + MAC, blob) == INDEPENDENT.sql_unwrap(ENC + MAC, blob)
    assert ref.ok or ref.code in {
        "wrapped_too_short",
        "wrapped_length_invalid",
        "hmac_mismatch",
        "bad_padding",
    }


@pytest.mark.req("DISK_03", "DISK_04", "DISK_05")
@given(record=near(_RECORD), file_id=st.one_of(st.none(), st.integers(-2, 2**33)))
def test_fuzz_key_record_parser(record: bytes, file_id: int | None) -> None:
    count("key record")
    ref = REFERENCE.decode_record(record, file_id)
    assert ref == INDEPENDENT.decode_record(record, file_id)
    assert ref.ok or ref.code in {"record_size_invalid", "record_id_invalid", "record_id_mismatch"}


NAMES = ["0000", "0001", "0002", "0003", "000", "00000", "000a", "000A", "0000~", ".0000", "x"]


@st.composite
def directory_listings(draw: st.DrawFn) -> dict[str, bytes | None]:
    """A key directory's entries: name -> content (None: a subdirectory)."""
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    return {
        name: draw(st.one_of(st.none(), near(_RECORD), st.just(b"")))
        if draw(st.integers(0, 9)) == 0
        else draw(near(_RECORD))
        for name in names
    }


@pytest.mark.req("DISK_06", "START_02", "START_03")
@given(listing=directory_listings(), staged=st.one_of(st.none(), directory_listings()))
def test_fuzz_key_directory_listing(
    listing: dict[str, bytes | None], staged: dict[str, bytes | None] | None
) -> None:
    count("key directory listing")
    with tempfile.TemporaryDirectory() as tmp:
        roots = [Path(tmp, "ref"), Path(tmp, "ind")]
        for root in roots:
            for dirname, entries in (("pg_cryptokeys", listing), ("pg_cryptokeys_tmp", staged)):
                if entries is None:
                    continue
                (root / dirname).mkdir(parents=True)
                for name, content in entries.items():
                    if content is None:
                        (root / dirname / name).mkdir()
                    else:
                        (root / dirname / name).write_bytes(content)
            root.mkdir(exist_ok=True)
        ref = REFERENCE.startup(str(roots[0]), PASS)
        ind = INDEPENDENT.startup(str(roots[1]), PASS)
        assert ref == ind
        assert tree(roots[0]) == tree(roots[1])


# -- adapter messages ------------------------------------------------------------------------
# Ops that neither run commands nor write outside the datadir we give them.
SAFE_REQUESTS: list[dict[str, Any]] = [
    {"op": "derive_kek", "passphrase": PASS.hex()},
    {"op": "wrap", "enc_key": ENC.hex(), "mac_key": MAC.hex(), "plaintext": "00", "iv": "00" * 16},
    {"op": "unwrap", "enc_key": ENC.hex(), "mac_key": MAC.hex(), "wrapped": _WRAPPED.hex()},
    {"op": "encode_record", "key_id": 1, "wrapped_key": "ab" * 128},
    {"op": "decode_record", "record": _RECORD.hex(), "file_id": 1},
    {"op": "substitute", "command": "x %p %% %"},
    {"op": "check_passphrase", "passphrase": PASS.hex(), "purpose": "startup"},
    {"op": "sql_wrap", "sql_key": (ENC + MAC).hex(), "plaintext": "", "iv": "11" * 16},
    {"op": "sql_unwrap", "sql_key": (ENC + MAC).hex(), "wrapped": _WRAPPED.hex()},
    {"op": "startup", "datadir": "DATADIR", "passphrase": PASS.hex()},
    {"op": "recover", "datadir": "DATADIR", "passphrase": PASS.hex()},
    {"op": "hello"},
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def adapter_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    request: dict[str, Any] = {
        "id": draw(st.integers(0, 2**31)),
        **draw(st.sampled_from(SAFE_REQUESTS)),
    }
    field = draw(st.sampled_from(sorted(request)))
    action = draw(st.sampled_from(["drop", "replace", "extra", "hexcase"]))
    if action == "drop":
        request.pop(field)
    elif action == "replace" and field not in ("datadir", "op"):
        request[field] = draw(json_values)
    elif action == "extra":
        request[draw(st.text(max_size=8))] = draw(json_values)
    elif isinstance(request[field], str) and field not in ("datadir",):
        request[field] = request[field].upper()
    return json.dumps(request).encode()


@pytest.fixture(scope="module")
def adapter_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AdapterClient, AdapterClient, Path]]:
    root = tmp_path_factory.mktemp("fuzz_adapters")
    for name in ("ref", "ind", "data"):
        (root / name).mkdir()
    # Each adapter runs in its own empty working directory, so a relative path cannot reach
    # anything but scratch space.
    with (
        AdapterClient(BUNDLED["reference"], cwd=str(root / "ref")) as ref,
        AdapterClient(BUNDLED["independent"], cwd=str(root / "ind")) as ind,
    ):
        yield ref, ind, root / "data"


def _exchange(client: AdapterClient, line: bytes) -> dict[str, Any]:
    return client.send_raw_bytes(line + b"\n")


@pytest.mark.req("ADP_01", "ADP_02", "ADP_03")
@given(line=adapter_lines())
def test_fuzz_adapter_messages(
    adapter_pair: tuple[AdapterClient, AdapterClient, Path], line: bytes
) -> None:
    ref, ind, datadir = adapter_pair
    line = line.replace(b'"DATADIR"', json.dumps(str(datadir)).encode())
    if not line.strip():
        return  # blank lines get no answer, by design
    count("adapter message")
    answers = [_exchange(c, line) for c in (ref, ind)]
    try:
        op = json.loads(line)["op"]
    except (ValueError, KeyError, TypeError):
        op = "hello"  # any op's response schema accepts the error envelope
    if op not in schema.operations():
        op = "hello"
    for answer in answers:
        schema.validate_response(op, answer)
        assert answer.get("error", {}).get("code") != "internal_error", line
    assert answers[0]["ok"] == answers[1]["ok"]
    if op in ("wrap", "sql_wrap") and json.loads(line).get("iv") is None:
        # No IV injected: each drew its own from the CSPRNG, so only the shape can agree.
        assert [len(a.get("result", {}).get("wrapped", "")) for a in answers] == [
            len(answers[0].get("result", {}).get("wrapped", ""))
        ] * 2
    else:
        results = [dict(a.get("result", {})) for a in answers]
        for result in results:
            result.pop("implementation", None)  # hello: each names itself
        assert results[0] == results[1]
    assert answers[0].get("error", {}).get("code") == answers[1].get("error", {}).get("code")


@pytest.mark.req("PASS_01", "PASS_03", "PASS_04", "PASS_05", "PASS_06", "PASS_07")
@given(
    output=st.one_of(st.binary(max_size=1100), st.integers(0, 5000).map(lambda n: b"\n" * n)),
    status=st.sampled_from([0, 0, 0, 1, 255]),
    purpose=st.sampled_from(["bootstrap", "startup", "rotation"]),
)
def test_fuzz_passphrase_command_output(
    adapter_pair: tuple[AdapterClient, AdapterClient, Path],
    output: bytes,
    status: int,
    purpose: str,
) -> None:
    count("passphrase command output")
    ref, ind, datadir = adapter_pair
    out = datadir / "command_output"
    out.write_bytes(output)
    command = f"cat {shlex.quote(str(out))}; exit {status}"
    answers = [
        c.call("run_passphrase_command", command=command, purpose=purpose) for c in (ref, ind)
    ]
    assert [(a.ok, a.result, a.error_code) for a in answers] == [
        (answers[0].ok, answers[0].result, answers[0].error_code)
    ] * 2
    if status:
        assert answers[0].error_code == "passphrase_command_failed"
    elif answers[0].ok:
        assert bytes.fromhex(answers[0].result["passphrase"]) == output[:1024]
    else:
        assert answers[0].error_code in {"passphrase_too_short", "passphrase_too_long"}
