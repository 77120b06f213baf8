"""The committed vector files: valid against their strict schemas (VEC_01), every test citing
requirements and every flag explained (VEC_04); malformed files are refused with the fault named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pgkms_conformance.ids import CITABLE_PATTERN
from pgkms_conformance.vectors.canonical import dumps
from pgkms_conformance.vectors.runner import (
    REPO_VECTOR_DIR,
    VectorFile,
    VectorFileError,
    iter_vector_files,
    load_vector_file,
)
from pgkms_conformance.vectors.triage import BUG_TYPES

pytestmark = pytest.mark.req("VEC_01")

FAMILIES = {
    "kdf",
    "key_record",
    "key_directory",
    "passphrase_command",
    "rotation",
    "upgrade",
    "wrap",
    "sql_wrap",
    "accumulated",
}


def test_every_family_is_committed(vector_files: list[VectorFile]) -> None:
    assert {f.family for f in vector_files} >= FAMILIES


def _open_objects(node: object, path: str = "") -> list[str]:
    """Paths of object schemas that do not close themselves with additionalProperties: false
    (or with a schema for further properties that is itself closed, as free notes are)."""
    found: list[str] = []
    if isinstance(node, dict):
        extra = node.get("additionalProperties")
        closed = extra is False or (isinstance(extra, dict) and not _open_objects(extra))
        if node.get("type") == "object" and not closed:
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


@pytest.mark.req("VEC_04", "VEC_07", "VEC_10")
def test_every_test_cites_requirements_and_explains_flags(vector_files: list[VectorFile]) -> None:
    for vf in vector_files:
        used = set()
        for _, test in vf.tests():
            assert test["requirements"], (vf.family, test["tcId"])
            used.update(test["flags"])
        assert used == set(vf.document["notes"]), vf.family
        assert vf.document["numberOfTests"] == sum(1 for _ in vf.tests())


@pytest.mark.req("VEC_12")
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


@pytest.mark.req("VEC_07", "VEC_08")
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
        (lambda d: _first_test(d).update(flags=["NOT_A_FLAG"]), "flags \\['NOT_A_FLAG'\\] not in"),
        (lambda d: _first_test(d).update(flags=["not a flag"]), "schema violation"),
        (lambda d: d["notes"]["LITTLE_ENDIAN"].pop("bugType"), "schema violation at notes"),
        (lambda d: d["notes"]["LITTLE_ENDIAN"].pop("effect"), "schema violation at notes"),
        (lambda d: d["notes"]["LITTLE_ENDIAN"].update(bugType="SEVERE"), "schema violation"),
        (lambda d: d["notes"]["LITTLE_ENDIAN"].update(effect="two\nlines"), "schema violation"),
        (lambda d: d["notes"].pop("LITTLE_ENDIAN"), "schema violation at notes"),
        (lambda d: d["notes"].update(MINE={"bugType": "BASIC"}), "schema violation at notes"),
        (lambda d: d.update(source={"version": "1"}), "schema violation at source"),
        (lambda d: _first_test(d).update(observed={"result": "valid"}), "schema violation"),
        (lambda d: _first_test(d).update(requirements=["NOPE_01"]), "schema violation"),
        (lambda d: _first_test(d)["input"].update(wrapped_key="zz"), "schema violation"),
        (lambda d: d.update(schema="../x.json"), "plain file name"),
        (lambda d: d.update(schema="missing_schema.json"), "not found among the project's"),
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


def _free_notes_and_provenance(doc: dict[str, Any]) -> None:
    doc["source"] = {
        "name": "a converter",
        "version": "0.3",
        "url": "https://example.org/vectors",
        "description": "records captured from a 2020 cluster",
    }
    doc["notes"]["FROM_ELSEWHERE"] = {"description": "a flag of the source's own"}
    doc["notes"]["TRIAGED_ELSEWHERE"] = {
        "bugType": "WEAK_PARAMS",
        "description": "another flag",
        "effect": "what a failure means there",
    }
    test = _first_test(doc)
    test["flags"] = sorted([*test["flags"], "FROM_ELSEWHERE", "TRIAGED_ELSEWHERE"])
    test["observed"] = {
        "description": "the source system refused this record",
        "result": "invalid",
        "error": "record_size_invalid",
    }
    test["requirements"] = [*test["requirements"], "DEV_RECORD_ID", "SEC_RECORD_ID"]


def test_provenance_observed_free_notes_and_findings_are_accepted(tmp_path: Path) -> None:
    path, doc = _copy(tmp_path, "key_record")
    _free_notes_and_provenance(doc)
    path.write_text(dumps(doc))
    loaded = load_vector_file(path)
    assert loaded.document["source"]["name"] == "a converter"
    assert _first_test(loaded.document)["observed"]["result"] == "invalid"


@pytest.mark.parametrize("family", sorted(FAMILIES | {"crash_recovery"}))
def test_every_family_may_cite_findings_and_deviations(tmp_path: Path, family: str) -> None:
    path, doc = _copy(tmp_path, family)
    test = _first_test(doc)
    test["requirements"] = sorted([*test["requirements"], "DEV_FSYNC", "SEC_IV"])
    test["observed"] = {"description": "the source system did the same"}
    doc["source"] = {"name": "hand-converted"}
    path.write_text(dumps(doc))
    assert load_vector_file(path).family == family


@pytest.mark.req("VEC_08")
def test_a_schema_beside_the_file_is_never_used(tmp_path: Path) -> None:
    path, doc = _copy(tmp_path, "key_record")
    loose = tmp_path / "schemas" / "key_record_schema.json"
    loose.write_text('{"$schema": "https://json-schema.org/draft/2020-12/schema"}')
    _first_test(doc).update(extra=1)
    path.write_text(dumps(doc))
    with pytest.raises(VectorFileError, match="schema violation at testGroups/0/tests/0"):
        load_vector_file(path)
    doc["schema"] = "loose_schema.json"
    (tmp_path / "schemas" / "loose_schema.json").write_text(loose.read_text())
    path.write_text(dumps(doc))
    with pytest.raises(VectorFileError, match="not found among the project's"):
        load_vector_file(path)


@pytest.mark.req("VEC_09")
def test_a_directory_skips_json_that_is_no_vector_file(tmp_path: Path) -> None:
    path, doc = _copy(tmp_path, "key_record")
    path.write_text(dumps(doc))
    (tmp_path / "package.json").write_text('{"name": "x"}')
    (tmp_path / "other.json").write_text('{"schema": "someone_elses_schema.json"}')
    warnings: list[str] = []
    files = list(iter_vector_files([tmp_path], warn=warnings.append))
    assert [f.family for f in files] == ["key_record"]
    assert len(warnings) == 2
    assert all("\n" not in w and w.startswith("warning: skipped ") for w in warnings)
    assert "package.json" in warnings[1] and "no 'schema' field" in warnings[1]
    assert "someone_elses_schema.json" in warnings[0]
    # A broken vector file is still an error, and so is a non-vector file named on its own.
    _first_test(doc).update(extra=1)
    path.write_text(dumps(doc))
    with pytest.raises(VectorFileError, match="schema violation"):
        list(iter_vector_files([tmp_path], warn=warnings.append))
    with pytest.raises(VectorFileError, match="no 'schema' field"):
        list(iter_vector_files([tmp_path / "package.json"]))


@pytest.mark.req("VEC_11")
def test_every_project_flag_carries_a_triage(vector_files: list[VectorFile]) -> None:
    for vf in vector_files:
        for flag, entry in vf.document["notes"].items():
            assert entry["bugType"] in BUG_TYPES, (vf.family, flag)
            assert entry["effect"] and "\n" not in entry["effect"], (vf.family, flag)
            assert entry["description"], (vf.family, flag)


def _requirement_patterns(node: object) -> list[str]:
    """The item pattern of every ``requirements`` property anywhere in a schema."""
    found: list[str] = []
    if isinstance(node, dict):
        requirements = node.get("properties", {}).get("requirements")
        if isinstance(requirements, dict) and "items" in requirements:
            found.append(requirements["items"]["pattern"])
        for value in node.values():
            found.extend(_requirement_patterns(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_requirement_patterns(value))
    return found


def test_every_schema_cites_with_the_shared_pattern() -> None:
    for path in sorted((REPO_VECTOR_DIR / "schemas").glob("*_schema.json")):
        patterns = _requirement_patterns(json.loads(path.read_text()))
        assert patterns and set(patterns) == {CITABLE_PATTERN}, path.name


def test_the_spec_lists_the_bug_types_in_the_order_reports_use() -> None:
    chapter = (REPO_VECTOR_DIR.parent / "spec/chapters/test-vectors.rst").read_text()
    table = chapter.split(".. list-table:: Bug types, most severe first", 1)[1]
    table = table.split("\n\n", 2)[1]  # the rows after the table's options
    listed = re.findall(r"^   \* - ``([A-Z0-9_]+)``$", table, flags=re.M)  # not the header
    assert listed == list(BUG_TYPES)


def test_the_guides_example_of_an_own_file_loads(tmp_path: Path) -> None:
    page = (REPO_VECTOR_DIR.parent / "docs/vectors.rst").read_text()
    block = page.split(".. code-block:: json\n\n", 1)[1].split("\n\n", 1)[0]
    example = json.loads("\n".join(line[3:] for line in block.splitlines()))
    path, doc = _copy(tmp_path, "key_record")
    doc.pop("generator")
    doc["source"] = example["source"]
    doc["notes"].update(example["notes"])
    (wanted,) = example["testGroups"][0]["tests"]
    test = _first_test(doc)
    test["flags"] = sorted([*test["flags"], *wanted["flags"]])
    test["observed"] = wanted["observed"]
    path.write_text(dumps(doc))
    assert load_vector_file(path).document["source"]["name"] == "captured-2020-cluster"
