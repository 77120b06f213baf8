"""``pgkms-conformance vectors validate``: judge vector files from elsewhere as ``run`` will
(VEC_01), and summarise their triage (VEC_04)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgkms_conformance.cli import main
from pgkms_conformance.vectors.canonical import dumps
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR

pytestmark = pytest.mark.req("VEC_01", "VEC_04")


def test_validate_summarises_a_good_file_and_skips_other_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((REPO_VECTOR_DIR / "upgrade.json").read_text())
    doc["source"] = {"name": "my-converter", "version": "2"}
    doc["notes"]["MINE"] = {"description": "a flag of my own"}
    doc["testGroups"][0]["tests"][0]["flags"].append("MINE")
    doc["testGroups"][0]["tests"][0]["observed"] = {"description": "it did the same"}
    (tmp_path / "mine.json").write_text(dumps(doc))
    (tmp_path / "report.json").write_text('{"schema": "pgkms-harness-report/2"}')
    assert main(["vectors", "validate", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "mine.json: valid upgrade file, 13 tests, from my-converter 2" in out
    lines = out.splitlines()
    assert lines.index("  KEY_LOSS: BYTE_FOR_BYTE, NOTHING_WRITTEN, RECOVERED_FIRST") < (
        lines.index("  UNTRIAGED: MINE")
    )
    assert "1 test(s) say what the source system observed" in out
    assert err.count("warning: skipped") == 1 and "report.json" in err


def test_validate_refuses_a_bad_file_and_an_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((REPO_VECTOR_DIR / "upgrade.json").read_text())
    del doc["notes"]["NOTHING_WRITTEN"]["effect"]
    bad = tmp_path / "bad.json"
    bad.write_text(dumps(doc))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["vectors", "validate", str(bad), str(empty)]) == 1
    out = capsys.readouterr().out
    assert f"REFUSED {bad}: schema violation at notes" in out
    assert f"REFUSED {empty}: no vector file there" in out
