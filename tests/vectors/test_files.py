"""The committed vector files: valid against their strict schemas (VEC_01), every test citing
requirements and every flag explained (VEC_04); malformed files are refused with the fault named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pgkms_conformance.vectors.canonical import dumps
from pgkms_conformance.vectors.runner import (
    REPO_VECTOR_DIR,
    VectorFile,
    VectorFileError,
    load_vector_file,
)

pytestmark = pytest.mark.req("VEC_01")

FAMILIES = {
    "kdf",
    "key_record",
    "key_directory",
    "passphrase_command",
    "rotation",
    "wrap",
    "sql_wrap",
    "accumulated",
}


def test_every_family_is_committed(vector_files: list[VectorFile]) -> None:
    assert {f.family for f in vector_files} >= FAMILIES


def _open_objects(node: object, path: str = "") -> list[str]:
    """Paths of object schemas that do not close themselves with additionalProperties: false."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            found.append(path)
        for key, value in node.items():
            found += _open_objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _open_objects(value, f"{path}/{i}")
    return found


# The test-level input/expected placeholders: each op's if/then clause closes them.
PLACEHOLDERS = [
    "/properties/testGroups/items/properties/tests/items/properties/input",
    "/properties/testGroups/items/properties/tests/items/properties/expected",
]


def test_schemas_are_valid_draft_2020_12_and_closed() -> None:
    paths = sorted((REPO_VECTOR_DIR / "schemas").glob("*.json"))
    assert len(paths) >= len(FAMILIES)
    for path in paths:
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        if path.name.removesuffix("_schema.json") in FAMILIES:  # the schemas we generate
            assert _open_objects(schema) == PLACEHOLDERS, path


@pytest.mark.req("VEC_04")
def test_every_test_cites_requirements_and_explains_flags(vector_files: list[VectorFile]) -> None:
    for vf in vector_files:
        used = set()
        for _, test in vf.tests():
            assert test["requirements"], (vf.family, test["tcId"])
            used.update(test["flags"])
        assert used == set(vf.document["notes"]), vf.family
        assert vf.document["numberOfTests"] == sum(1 for _ in vf.tests())


def test_acceptable_only_with_a_flag_saying_why(vector_files: list[VectorFile]) -> None:
    for vf in vector_files:
        for _, test in vf.tests():
            if test["result"] == "acceptable":
                assert test["flags"], (vf.family, test["tcId"])


def _copy(tmp_path: Path, family: str) -> tuple[Path, dict[str, Any]]:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    for schema in (REPO_VECTOR_DIR / "schemas").glob("*.json"):
        (tmp_path / "schemas" / schema.name).write_text(schema.read_text())
    doc = json.loads((REPO_VECTOR_DIR / f"{family}.json").read_text())
    return tmp_path / f"{family}.json", doc


def _first_test(doc: dict[str, Any]) -> dict[str, Any]:
    test: dict[str, Any] = doc["testGroups"][0]["tests"][0]
    return test


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: _first_test(d).update(extra=1), "schema violation at testGroups/0/tests/0"),
        (lambda d: _first_test(d).update(requirements=[]), "schema violation"),
        (lambda d: _first_test(d)["input"].update(key_id=7), "id does not match"),
        (lambda d: _first_test(d)["input"].update(iv="00"), "schema violation"),
        (lambda d: _first_test(d)["expected"].update(extra="00"), "schema violation"),
        (lambda d: _first_test(d).update(result="invalid"), "schema violation"),
        (lambda d: d.update(numberOfTests=1), "numberOfTests is 1"),
        (lambda d: _first_test(d).update(tcId=9), "expected tcId 1"),
        (lambda d: _first_test(d).update(flags=["NOT_A_FLAG"]), "schema violation"),
        (lambda d: _first_test(d)["input"].update(wrapped_key="zz"), "schema violation"),
        (lambda d: d.update(schema="../x.json"), "plain file name"),
        (lambda d: d.update(schema="missing_schema.json"), "not found"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, edit: object, message: str) -> None:
    path, doc = _copy(tmp_path, "key_record")
    assert callable(edit)
    edit(doc)
    path.write_text(dumps(doc))
    with pytest.raises(VectorFileError, match=message):
        load_vector_file(path)


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(VectorFileError, match="cannot read as JSON"):
        load_vector_file(path)
    path.write_text("[]")
    with pytest.raises(VectorFileError, match="no 'schema' field"):
        load_vector_file(path)
