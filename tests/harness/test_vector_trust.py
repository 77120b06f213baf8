"""The repository's vector files are schema-validated by ``vectors check``, not on every run.

A run skips the schema for a file only when its bytes, and every schema's bytes, have the
digests the generator listed in ``vectors/SHA256SUMS``; any other file (a user's, a copy, an
edited one) is validated in full. ``vectors check`` fails on a missing or stale list.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pgkms_conformance.harness import vector_stage
from pgkms_conformance.vectors import runner
from pgkms_conformance.vectors.generate import Generated, check, write
from pgkms_conformance.vectors.runner import MANIFEST, REPO_VECTOR_DIR, VectorFileError

pytestmark = pytest.mark.req("VEC_01")


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the schema is applied to, by name, in order."""
    seen: list[str] = []
    original = runner._validate_schema

    def recording(path: Path, document: dict[str, Any]) -> None:
        seen.append(path.name)
        original(path, document)

    monkeypatch.setattr(runner, "_validate_schema", recording)
    return seen


@pytest.fixture
def repo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``vectors/`` standing in for the repository's (its list of digests with it)."""
    copy = tmp_path / "vectors"
    shutil.copytree(REPO_VECTOR_DIR, copy)
    monkeypatch.setattr(vector_stage, "REPO_VECTOR_DIR", copy)
    return copy


def test_repository_files_as_generated_skip_the_schema(validations: list[str]) -> None:
    files = vector_stage.load_vectors(vector_stage.default_vector_paths())
    assert len(files) >= 8
    assert validations == []


def test_a_copy_elsewhere_is_validated(validations: list[str], tmp_path: Path) -> None:
    user_file = tmp_path / "wrap.json"
    shutil.copy(REPO_VECTOR_DIR / "wrap.json", user_file)
    shutil.copytree(REPO_VECTOR_DIR / "schemas", tmp_path / "schemas")
    vector_stage.load_vectors([user_file, REPO_VECTOR_DIR / "kdf.json"])
    assert validations == ["wrap.json"]


def test_an_edited_repository_file_is_validated(validations: list[str], repo_copy: Path) -> None:
    path = repo_copy / "key_record.json"
    document = json.loads(path.read_text())
    document["testGroups"][0]["tests"][0]["comment"] = 42  # a schema violation only
    path.write_text(json.dumps(document))
    with pytest.raises(VectorFileError, match="schema violation"):
        vector_stage.load_vectors([repo_copy])
    assert validations[-1] == "key_record.json"


def test_an_edited_schema_withdraws_all_trust(validations: list[str], repo_copy: Path) -> None:
    schema = repo_copy / "schemas" / "kdf_schema.json"
    schema.write_text(schema.read_text() + "\n")
    files = vector_stage.load_vectors([repo_copy])
    assert sorted(validations) == sorted(f.path.name for f in files)


def test_without_a_list_everything_is_validated(validations: list[str], repo_copy: Path) -> None:
    (repo_copy / MANIFEST).unlink()
    files = vector_stage.load_vectors([repo_copy])
    assert len(validations) == len(files)


def test_vectors_check_requires_a_current_list(tmp_path: Path) -> None:
    generated = Generated(
        files={"a.json": "{}\n", "schemas/a_schema.json": "{}\n"}, counts={}, seconds={}
    )
    write(generated, tmp_path)
    assert check(tmp_path, generated) == []
    assert (tmp_path / MANIFEST).read_text().splitlines() == [
        "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356  a.json",
        "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356  schemas/a_schema.json",
    ]
    (tmp_path / MANIFEST).write_text("0" * 64 + "  a.json\n")
    assert check(tmp_path, generated) == [
        f"{MANIFEST}: missing or stale (run `pgkms-conformance vectors generate`)"
    ]
    (tmp_path / MANIFEST).unlink()
    assert len(check(tmp_path, generated)) == 1
