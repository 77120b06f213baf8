"""Secrets stay secret: with canary passphrases, keys and plaintexts, and an IUT that echoes
every value it receives into its error messages and stderr, none of them appears (as raw text,
hex or base64) on the console, in the JSON (every case listed), JUnit or HTML report, or in any
file the run leaves, except the replay files, which exist to hold failing inputs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pgkms_conformance.cli import main
from pgkms_conformance.harness import run as run_module
from pgkms_conformance.harness import scenarios
from pgkms_conformance.harness.oracle import oracle
from pgkms_conformance.vectors.canonical import vector_id
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR

from tests.harness.helpers import fake

pytestmark = pytest.mark.req("ERR_02")

LABELS: list[str] = []


def canary(seed: int, label: str, n: int) -> bytes:
    """Every value the harness derives becomes a recognisable canary."""
    LABELS.append(label)
    unit = f"CANARY<{label}>".encode()
    return (unit * (n // len(unit) + 1))[:n]


def _forms(label: str, n: int) -> list[str]:
    value = canary(0, label, n)
    return [
        value.decode(),
        value.hex(),
        value.hex().upper(),
        base64.b64encode(value).decode().rstrip("="),
    ]


VECTOR_KEY = canary(0, "vector sql key", 64)
VECTOR_PLAINTEXT = canary(0, "vector plaintext", 40)


def _canary_vectors(path: Path) -> Path:
    """A valid sql_wrap vector file whose key and plaintext are canaries."""
    document = json.loads((REPO_VECTOR_DIR / "sql_wrap.json").read_text())
    iv = bytes(range(16)).hex()
    wrap_in = {"sql_key": VECTOR_KEY.hex(), "plaintext": VECTOR_PLAINTEXT.hex(), "iv": iv}
    wrapped = oracle("sql_wrap", wrap_in).result["wrapped"]
    unwrap_in = {"sql_key": VECTOR_KEY.hex(), "wrapped": wrapped}
    tests = [
        ("sql_wrap", wrap_in, {"wrapped": wrapped}),
        ("sql_unwrap", unwrap_in, {"plaintext": VECTOR_PLAINTEXT.hex()}),
    ]
    group = {**document["testGroups"][0], "tests": []}
    for tc_id, (op, params, expected) in enumerate(tests, start=1):
        group["tests"].append(
            {
                "tcId": tc_id,
                "id": vector_id(op, params),
                "comment": "a canary",
                "flags": [],
                "requirements": ["SQL_01"],
                "op": op,
                "input": params,
                "result": "valid",
                "expected": expected,
            }
        )
    document |= {"testGroups": [group], "numberOfTests": len(tests)}
    target = path / "canary.json"
    target.write_text(json.dumps(document))
    return target


def test_no_canary_escapes(
    tmp_path: Path,
    isolated_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(scenarios, "drbg", canary)
    monkeypatch.setattr(run_module, "drbg", canary)
    replays, out_dir = tmp_path / "replays", tmp_path / "out"
    out_dir.mkdir()
    argv = ["run", "--impl", " ".join(fake("leak")), "--examples", "5", "--no-default-vectors"]
    argv += ["--stages", "protocol,vectors,properties,scenarios", "--replay-dir", str(replays)]
    argv += ["--vectors", str(_canary_vectors(out_dir))]
    argv += ["--json", str(out_dir / "r.json"), "--junit", str(out_dir / "r.xml")]
    argv += ["--html", str(out_dir / "r.html"), "--json-all-cases"]  # every case, passing too
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "ERR_02" in captured.out  # the leaking messages were noticed ...
    assert "<redacted" in (out_dir / "r.json").read_text()  # ... and scrubbed from the report

    texts = {"stdout": captured.out, "stderr": captured.err}
    for path in [*out_dir.iterdir(), *isolated_tmp.rglob("*")]:
        if path.is_file() and path.name != "canary.json":
            texts[str(path)] = path.read_bytes().decode("latin-1")
    secrets = {
        "passphrase A": 72,
        "passphrase B": 80,
        "wrong passphrase": 70,
        "key 0": 64,
        "key 1": 64,
        "sql secret": 18,
        "iv check": 20,
        "vector sql key": 64,
        "vector plaintext": 40,
    }
    for label, n in secrets.items():
        for form in _forms(label, n):
            for where, text in texts.items():
                assert form not in text, f"{label} leaked into {where}"
    # The canaries were really used, and the replay files (the one exception) hold them.
    assert "sql secret" in LABELS
    assert "sql_wrap" in captured.out and "canary.json" in captured.out  # the vectors failed
    replay_text = "".join(p.read_text() for p in replays.iterdir())
    assert any(form in replay_text for form in _forms("passphrase A", 72) + _forms("key 0", 64))
