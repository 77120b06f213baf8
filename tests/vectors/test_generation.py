"""The generator: deterministic, canonical, byte-identical to the committed files (VEC_02),
drawing from the documented DRBG (VEC_03), refusing cases the reference contradicts."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from pgkms_conformance.vectors import cli as vectors_cli
from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family, GeneratorError
from pgkms_conformance.vectors.canonical import dumps, vector_id
from pgkms_conformance.vectors.cli import run as cli_run
from pgkms_conformance.vectors.generate import Generated, check, generate_all, write
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR

pytestmark = pytest.mark.req("VEC_02")


@pytest.fixture(scope="module")
def generated() -> Generated:
    return generate_all()


def test_committed_files_equal_a_regeneration(generated: Generated) -> None:
    assert check(REPO_VECTOR_DIR, generated) == []


def test_generation_is_deterministic(generated: Generated) -> None:
    again = generate_all()
    assert again.files == generated.files


def test_every_family_has_positive_and_negative_cases(generated: Generated) -> None:
    for rel, text in generated.files.items():
        if rel.startswith("schemas/") or rel == "accumulated.json":
            continue
        results = {t["result"] for g in json.loads(text)["testGroups"] for t in g["tests"]}
        assert {"valid", "invalid"} <= results, rel


def test_files_are_canonical(generated: Generated) -> None:
    for rel, text in generated.files.items():
        assert text == dumps(json.loads(text)), rel
        assert text.endswith("}\n"), rel


def test_check_names_the_first_differing_file_and_test(
    tmp_path: Path, generated: Generated
) -> None:
    write(generated, tmp_path)
    assert check(tmp_path, generated) == []
    path = tmp_path / "key_record.json"
    doc = json.loads(path.read_text())
    doc["testGroups"][1]["tests"][0]["comment"] = "edited by hand"
    path.write_text(dumps(doc))
    (tmp_path / "stale.json").write_text("{}\n")
    problems = check(tmp_path, generated)
    assert any(p.startswith("key_record.json: first differing test tcId 4") for p in problems)
    assert any(p.startswith("stale.json: not produced") for p in problems)


def test_check_reports_formatting_only_differences(tmp_path: Path, generated: Generated) -> None:
    write(generated, tmp_path)
    path = tmp_path / "kdf.json"
    path.write_text(json.dumps(json.loads(path.read_text())))
    assert check(tmp_path, generated) == [
        "kdf.json: same content, different formatting (not canonical)"
    ]


def test_cli_check_fails_on_a_changed_byte(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    generated: Generated,
) -> None:
    # The command's own regeneration is the module's (generation is tested above): this test is
    # about what the command reports, and a regeneration costs seconds.
    monkeypatch.setattr(vectors_cli, "generate_all", lambda progress=None: generated)
    shutil.copytree(REPO_VECTOR_DIR, tmp_path / "v")
    assert cli_run(argparse.Namespace(vectors_command="check", dir=tmp_path / "v")) == 0
    path = tmp_path / "v" / "wrap.json"
    text = path.read_text()
    i = text.index('"wrapped": "') + len('"wrapped": "')
    path.write_text(text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :])
    assert cli_run(argparse.Namespace(vectors_command="check", dir=tmp_path / "v")) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT wrap.json: first differing test tcId 1" in out


def test_cli_generate_writes_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(vectors_command="generate", out=tmp_path, accumulated=5)
    assert cli_run(args) == 0
    out = capsys.readouterr().out
    assert "accumulated:      1 tests" in out
    assert (
        json.loads((tmp_path / "accumulated.json").read_text())["testGroups"][0]["tests"][0][
            "input"
        ]["count"]
        == 5
    )


@pytest.mark.req("VEC_03")
def test_drbg_is_shake128_of_seed_and_label() -> None:
    assert drbg.derive("wrap/length-0/iv", 16) == hashlib.shake_128(
        b"pgkms-vectors/v1/wrap/length-0/iv"
    ).digest(16)
    assert drbg.derive("x", 40)[:16] == drbg.derive("x", 16)  # a prefix, as SHAKE is
    assert drbg.derive("x", 16) != drbg.derive("y", 16)
    printable = drbg.derive_printable("kdf/printable-64", 64)
    assert all(0x21 <= b <= 0x7E for b in printable)
    assert printable[0] == 0x21 + drbg.derive("kdf/printable-64", 1)[0] % 94


@pytest.mark.req("VEC_03")
def test_vectors_can_be_reproduced_from_their_labels() -> None:
    """A reader can rebuild an input from the header's recipe, without our code."""
    doc = json.loads((REPO_VECTOR_DIR / "wrap.json").read_text())
    test = doc["testGroups"][0]["tests"][2 * 17]  # round trip group: wrap of length 17

    def shake(label: str, n: int) -> bytes:
        return hashlib.shake_128(b"pgkms-vectors/v1/" + label.encode()).digest(n)

    assert test["input"]["plaintext"] == shake("wrap/length-17/plaintext", 17).hex()
    assert test["input"]["iv"] == shake("wrap/length-17/iv", 16).hex()
    assert test["input"]["enc_key"] == shake("wrap/length-17/enc_key", 32).hex()


def test_ids_hash_op_and_input() -> None:
    ident = vector_id("unwrap", {"wrapped": "00"})
    compact = '{"input":{"wrapped":"00"},"op":"unwrap"}'
    assert ident == hashlib.sha256(compact.encode()).hexdigest()[:16]


@pytest.mark.req("VEC_13")
def test_builder_refuses_an_intent_the_reference_contradicts() -> None:
    fam = Family("demo", ["h"], {})
    g = fam.group("g", "c")
    with pytest.raises(GeneratorError, match="intended error hmac_mismatch, reference gave None"):
        g.add(
            "check_passphrase",
            {"passphrase": (b"p" * 64).hex(), "purpose": "startup"},
            comment="64 bytes is fine, so this intent is wrong",
            requirements=["PASS_07"],
            error="hmac_mismatch",
        )
    with pytest.raises(GeneratorError, match="intended success"):
        g.add(
            "check_passphrase",
            {"passphrase": "", "purpose": "startup"},
            comment="empty is too short",
            requirements=["PASS_07"],
        )
    with pytest.raises(GeneratorError, match="differs from the known value"):
        g.add(
            "check_passphrase",
            {"passphrase": (b"p" * 64).hex(), "purpose": "startup"},
            comment="a wrong known value",
            requirements=["PASS_07"],
            expected={"passphrase": "00"},
        )


@pytest.mark.req("VEC_04", "VEC_10")
def test_document_refuses_unexplained_flags_and_missing_requirements() -> None:
    params = {"passphrase": (b"p" * 64).hex(), "purpose": "startup"}
    fam = Family("demo", ["h"], {})
    fam.group("g", "c").add(
        "check_passphrase", params, comment="c", requirements=["PASS_07"], flags=["UNEXPLAINED"]
    )
    with pytest.raises(GeneratorError, match="not explained in notes"):
        fam.document()
    fam = Family("demo", ["h"], {})
    fam.group("g", "c").add("check_passphrase", params, comment="c", requirements=[])
    with pytest.raises(GeneratorError, match="names no requirement"):
        fam.document()
    fam = Family("demo", ["h"], {})
    fam.group("g", "c").add("check_passphrase", params, comment="c", requirements=["NOPE_01"])
    with pytest.raises(GeneratorError, match="unknown requirement"):
        fam.document()
    fam = Family("demo", ["h"], {"UNUSED": "explained but never used"})
    fam.group("g", "c").add("check_passphrase", params, comment="c", requirements=["PASS_07"])
    with pytest.raises(GeneratorError, match="unused flag"):
        fam.document()
    fam = Family("demo", ["h"], {})
    g = fam.group("g", "c")
    g.add("check_passphrase", params, comment="c", requirements=["PASS_07"])
    g.add("check_passphrase", params, comment="same again", requirements=["PASS_07"])
    with pytest.raises(GeneratorError, match="same op and input as tcId 1"):
        fam.document()


def test_the_vector_readme_lists_every_file() -> None:
    """A vector file the README does not list is one a user never finds."""
    root = Path(__file__).parents[2] / "vectors"
    readme = (root / "README.md").read_text(encoding="utf-8")
    listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    assert listed == {p.name for p in root.glob("*.json")}
