"""The C adapter answers every malformed request with a protocol error and keeps running
(ADP_01, ADP_03): bad JSON, wrong types for every declared field, bad hex, huge fields, a line
over the 16 MiB limit, deep nesting. Seeded, so a failure replays; about 2 s."""

from __future__ import annotations

import json
import random
import subprocess
from typing import Any

import pytest

from tests.c_adapter.conftest import Built

FIELDS = {
    "derive_kek": ["passphrase"],
    "wrap": ["enc_key", "mac_key", "plaintext", "iv"],
    "unwrap": ["enc_key", "mac_key", "wrapped"],
    "encode_record": ["key_id", "wrapped_key"],
    "decode_record": ["record", "file_id"],
    "substitute": ["command"],
    "run_passphrase_command": ["command", "purpose", "timeout"],
    "check_passphrase": ["passphrase", "purpose"],
    "bootstrap": ["datadir", "passphrase", "keys", "ivs", "lock_timeout"],
    "startup": ["datadir", "passphrase", "lock_timeout"],
    "rotate": ["datadir", "old_passphrase", "new_passphrase", "ivs"],
    "recover": ["datadir", "passphrase"],
    "upgrade_keys": ["old_datadir", "new_datadir", "passphrase"],
    "sql_wrap": ["sql_key", "plaintext", "iv"],
    "sql_unwrap": ["sql_key", "wrapped"],
}
# none of these is valid for any field, except that a text field takes any string
BAD_VALUES: list[Any] = [
    1.5,
    True,
    [],
    {},
    "ABCD",
    "abc",
    "zz",
    "0g",
    -1,
    2**40,
    ["00"],
    [1, 2, 3],
    "\u00e9",
    {"nested": [1]},
    1e308,
    -0.5,
]
TEXT_FIELDS = {"command", "datadir", "old_datadir", "new_datadir"}
BAD_LINES = [
    "",
    "   ",
    "{",
    "[]",
    "null",
    "42",
    '"text"',
    '{"id":"1","op":"hello"}',
    '{"id":1}',
    '{"id":1,"op":7}',
    '{"id":1.0,"op":"hello"}',
    '{"id":1,"op":"hello","x":1}',
    '{"id":1,"op":"derive_kek","passphrase":"00","passphrase":"00"}',
    "\xff\xfe",
    '{"id":1,"op":"substitute","command":"a\\u0000b"}',
    "[" * 100_000,
    '{"id":1' + " " * 1000,
]


def _exchange(binary: str, lines: list[str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [binary], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-500:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def _requests(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(400):
        op = rng.choice(sorted(FIELDS))
        request: dict[str, Any] = {"id": i, "op": op}
        for name in FIELDS[op]:
            choices = [v for v in BAD_VALUES if name not in TEXT_FIELDS or not isinstance(v, str)]
            request[name] = rng.choice(choices)
        if rng.random() < 0.3:
            request[rng.choice(["extra", "ID", "Op"])] = 1
        out.append(request)
    return out


@pytest.mark.req("ADP_01", "ADP_02", "ADP_03")
def test_wrongly_typed_fields_are_malformed_requests(c_adapter: Built) -> None:
    requests = _requests(random.Random(15))
    answers = _exchange(str(c_adapter.binary), [json.dumps(r) for r in requests])
    assert len(answers) == len(requests)
    for request, answer in zip(requests, answers, strict=True):
        assert answer["id"] == request["id"]
        assert answer["ok"] is False, request["op"]
        assert answer["error"]["code"] in ("malformed_request", "unsupported_operation")


@pytest.mark.req("ADP_01", "ADP_03")
def test_bad_lines_are_answered_and_the_session_goes_on(c_adapter: Built) -> None:
    huge = json.dumps({"id": 7, "op": "derive_kek", "passphrase": "00" * (9 << 20)})
    lines = [*BAD_LINES, huge, '{"id":99,"op":"hello"}']
    answers = _exchange(str(c_adapter.binary), lines)
    blank = sum(1 for line in BAD_LINES if not line.strip())
    assert len(answers) == len(lines) - blank
    for answer in answers[:-1]:
        assert answer["ok"] is False
        assert answer["error"]["code"] in ("malformed_request", "unsupported_operation")
    assert answers[-1]["id"] == 99
    assert answers[-1]["ok"] is True


@pytest.mark.req("ADP_01", "ADP_02")
def test_a_large_valid_request_is_served(c_adapter: Built) -> None:
    # a 4 MiB plaintext: within the line limit, so it is wrapped, not refused
    request = {
        "id": 1,
        "op": "wrap",
        "enc_key": "00" * 32,
        "mac_key": "11" * 32,
        "plaintext": "ab" * (4 << 20),
    }
    (answer,) = _exchange(str(c_adapter.binary), [json.dumps(request)])
    assert answer["ok"] is True
    assert len(answer["result"]["wrapped"]) == 2 * (48 + (4 << 20) + 16)
