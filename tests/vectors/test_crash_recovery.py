"""The crash-recovery vectors: reproducible, self-describing, and true on a real filesystem."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pgkms.errors import KmsError
from pgkms.secret import Secret
from pgkms.startup import startup
from pgkms_conformance.ids import REQUIREMENT_CITATION_RE
from pgkms_conformance.vectors.canonical import dumps
from pgkms_conformance.vectors.families import crash_recovery

VECTORS = Path(__file__).parents[2] / "vectors" / "crash_recovery.json"
SCHEMA = VECTORS.parent / "schemas" / "crash_recovery_schema.json"
REQ = REQUIREMENT_CITATION_RE

pytestmark = pytest.mark.req("CRASH_08", "REC_06", "START_04")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return crash_recovery.build().document()


def all_tests(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for g in document["testGroups"] for t in g["tests"]]


def test_regenerating_gives_the_committed_bytes(document: dict[str, Any]) -> None:
    assert dumps(document) == VECTORS.read_text(encoding="utf-8")


def test_document_is_self_describing(document: dict[str, Any]) -> None:
    tests = all_tests(document)
    assert document["numberOfTests"] == len(tests)
    assert [t["tcId"] for t in tests] == list(range(1, len(tests) + 1))
    assert len({t["id"] for t in tests}) == len(tests)
    assert {g["protocol"] for g in document["testGroups"]} == {"spec", "2020"}
    assert document["schema"] == "crash_recovery_schema.json"
    assert document["generator"] == "pgkms-conformance vectors generate"
    for flag in document["notes"]:
        assert flag.isupper() and flag.replace("_", "").isalnum(), flag
    for t in tests:
        assert set(t["flags"]) <= set(document["notes"]), t["flags"]
        assert all(REQ.fullmatch(r) for r in t["requirements"]), t["requirements"]
        assert "expected" in t
        assert ("error" in t) == (t["result"] == "invalid")
        legacy_only = "LEGACY_2020_ONLY" in t["flags"]
        assert legacy_only == t["comment"].startswith("2020"), t["comment"]


def test_a_refused_startup_must_leave_the_directory_as_it_was(document: dict[str, Any]) -> None:
    """START_04 is checked by runners only through expected.datadir: every invalid test has it,
    equal to its input."""
    refused = [t for t in all_tests(document) if t["result"] == "invalid"]
    assert refused
    for t in refused:
        assert "START_04" in t["requirements"], t["tcId"]
        assert t["expected"] == {"datadir": t["input"]["datadir"]}, t["tcId"]


def test_document_matches_its_schema(document: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    broken = json.loads(json.dumps(document))
    del broken["testGroups"][0]["tests"][0]["result"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)


def materialize(root: Path, listing: dict[str, dict[str, Any]]) -> None:
    for path in sorted(listing, key=lambda p: p.count("/")):
        entry = listing[path]
        if path.endswith("/"):
            (root / path).mkdir(mode=entry["mode"])
        else:
            (root / path).write_bytes(bytes.fromhex(entry["content"]))
            os.chmod(root / path, entry["mode"])


def listing_of(root: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel == "pg_cryptokeys.lock":
            continue  # CONC_01: the lock file holds no key state
        if p.is_dir():
            out[rel + "/"] = {"mode": p.stat().st_mode & 0o777}
        else:
            out[rel] = {"mode": p.stat().st_mode & 0o777, "content": p.read_bytes().hex()}
    return out


def test_every_vector_holds_for_the_reference_on_a_real_filesystem(
    document: dict[str, Any], tmp_path: Path
) -> None:
    """Independent of the simulator: write each listing to disk and start up for real."""
    for t in all_tests(document):
        root = tmp_path / str(t["tcId"])
        root.mkdir()
        materialize(root, t["input"]["datadir"])
        before = listing_of(root)
        error: str | None = None
        try:
            keys = startup(str(root), Secret(bytes.fromhex(t["input"]["passphrase"])))
        except KmsError as exc:
            error = exc.code
        if error is not None:
            assert t["result"] == "invalid", (t["tcId"], error)
            assert error == t["error"], t["tcId"]
            assert listing_of(root) == before, t["tcId"]
        else:
            assert t["result"] == "valid", t["tcId"]
            assert [k.reveal().hex() for k in keys.by_id().values()] == t["expected"]["keys"]
            assert listing_of(root) == t["expected"]["datadir"], t["tcId"]
