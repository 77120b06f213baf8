"""Bringing your own vectors (VEC_01): a directory of them beside other JSON runs, its files are
judged by the project's schemas, and a failure shows its provenance, what the source system did
and its bug type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pgkms_conformance.cli import main
from pgkms_conformance.vectors.canonical import dumps
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR

pytestmark = pytest.mark.req("VEC_01", "VEC_04")


def _own_vectors(directory: Path, *, break_first: bool) -> None:
    doc: dict[str, Any] = json.loads((REPO_VECTOR_DIR / "key_record.json").read_text())
    doc.pop("generator")
    doc["source"] = {"name": "converted-from-2020", "version": "0.1"}
    doc["notes"]["SEEN_IN_THE_FIELD"] = {"description": "a record taken from a real cluster"}
    test = doc["testGroups"][0]["tests"][0]
    test["flags"] = sorted([*test["flags"], "SEEN_IN_THE_FIELD"])
    test["observed"] = {"description": "the 2020 server wrote the id in host order"}
    if break_first:
        test["expected"]["record"] = "00" * 132  # not what encode_record gives
        # A refusal the source system also gave: the IUT (which accepts) does not match it.
        second = doc["testGroups"][0]["tests"][1]
        second["result"], second["error"] = "invalid", "record_size_invalid"
        del second["expected"]
        second["observed"] = {"description": "it accepted this", "result": "valid"}
    (directory / "mine.json").write_text(dumps(doc))
    (directory / "package.json").write_text('{"name": "not vectors"}')


def _run(directory: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    report = tmp_path / "report.json"
    argv = ["run", "--impl", "reference", "--quiet", "--no-default-vectors", "--stages"]
    argv += ["vectors", "--vectors", str(directory), "--json", str(report)]
    code = main(argv)
    return code, json.loads(report.read_text())


def test_own_vectors_run_and_other_json_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "own"
    own.mkdir()
    _own_vectors(own, break_first=False)
    code, document = _run(own, tmp_path)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    warnings = [line for line in err.splitlines() if "package.json" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipped ")
    assert document["totals"]["passed"] == 32


def test_a_failure_shows_provenance_observed_behaviour_and_bug_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "own"
    own.mkdir()
    _own_vectors(own, break_first=True)
    code, document = _run(own, tmp_path)
    out, _ = capsys.readouterr()
    assert code == 1
    failure, accepted = document["failures"]
    assert failure["bug_type"] == ["BASIC"]  # LITTLE_ENDIAN's; the free flag names none
    assert failure["source"]["provenance"] == "converted-from-2020 0.1"
    assert failure["source"]["observed"] == "the 2020 server wrote the id in host order"
    assert failure["source"]["effect"].startswith("LITTLE_ENDIAN: reads or writes the id")
    assert "as the source system was observed to do" not in failure["detail"]
    assert accepted["found"] == "success"
    assert accepted["detail"].endswith("as the source system was observed to do")
    assert "BASIC (2): " in out
    assert "    effect: LITTLE_ENDIAN: " in out
    assert "from: converted-from-2020 0.1" in out
    assert "observed at the source: the 2020 server wrote the id in host order" in out
