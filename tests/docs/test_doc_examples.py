"""The documentation's examples, run as a user would run them.

The pytest loop of ``docs/vectors.rst`` is extracted from the page and run against a small
``mykms`` module built on the reference implementation; the bundled adapters start from a
directory that holds a folder named ``pgkms``; the console script explains a missing extra.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pgkms_conformance import cli

ROOT = Path(__file__).resolve().parents[2]
# The console script installed beside this interpreter: what a user types.
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("pgkms-conformance"))

MYKMS = """
from pgkms.errors import KmsError
from pgkms.kdf import WrapKeys
from pgkms.secret import Secret
from pgkms.wrap import unwrap as _unwrap, wrap as _wrap


def wrap(enc_key, mac_key, plaintext, iv):
    keys = WrapKeys(Secret(enc_key), Secret(mac_key))
    return bytes(_wrap(keys, Secret(plaintext), lambda n: iv))


def unwrap(enc_key, mac_key, wrapped):
    return _unwrap(WrapKeys(Secret(enc_key), Secret(mac_key)), wrapped).reveal()
"""


def code_blocks(page: Path, language: str) -> list[str]:
    """The ``.. code-block:: <language>`` bodies of an rst page, dedented."""
    blocks: list[str] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        body: list[str] = []
        for follow in lines[i + 1 :]:
            if follow and not follow.startswith("   "):
                break
            body.append(follow[3:])
        blocks.append("\n".join(body).strip() + "\n")
    return blocks


@pytest.mark.req("VEC_01")
def test_the_vectors_page_pytest_loop_passes_every_wrap_vector(tmp_path: Path) -> None:
    (block,) = code_blocks(ROOT / "docs" / "vectors.rst", "python")
    (tmp_path / "test_example.py").write_text(block, encoding="utf-8")
    (tmp_path / "mykms.py").write_text(MYKMS, encoding="utf-8")
    (tmp_path / "vectors").mkdir()
    shutil.copy(ROOT / "vectors" / "wrap.json", tmp_path / "vectors" / "wrap.json")
    document = json.loads((ROOT / "vectors" / "wrap.json").read_text())
    expected = sum(len(group["tests"]) for group in document["testGroups"])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert re.search(rf"\b{expected} passed\b", done.stdout), done.stdout[-500:]


@pytest.mark.req("ADP_04")
def test_bundled_adapter_starts_beside_a_folder_named_pgkms(tmp_path: Path) -> None:
    (tmp_path / "pgkms").mkdir()
    (tmp_path / "pgkms_independent").mkdir()
    for impl in ("reference", "independent"):
        done = subprocess.run(
            [CONSOLE_SCRIPT, "run", "--impl", impl, "--stages", "protocol"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-1000:]
        assert "VERDICT: PASS" in done.stdout


def test_console_script_names_the_missing_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "jsonschema" else real(name, *a),
    )
    assert cli.main(["run", "--impl", "reference"]) == 2
    err = capsys.readouterr().err
    assert "missing jsonschema" in err
    assert "pgkms[conformance]" in err
