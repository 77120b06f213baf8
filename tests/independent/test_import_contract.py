"""The import-independence contract ([tool.importlinter] in pyproject.toml) actually bites.

``lint-imports`` runs on a temporary copy of the package, first unchanged (contract kept), then
with ``import pgkms`` injected into one module, then with ``cryptography`` injected: both
injections must break the contract. The copy is found first on PYTHONPATH, ahead of the
installed package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pgkms_independent
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def run_contract(tmp_path: Path, injected: str | None) -> subprocess.CompletedProcess[str]:
    package = tmp_path / "pgkms_independent"
    shutil.copytree(
        Path(pgkms_independent.__file__).parent,
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    if injected is not None:
        codec = package / "codec.py"
        codec.write_text(codec.read_text() + f"\n{injected}\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tmp_path / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_unchanged_package_keeps_the_contract(tmp_path: Path) -> None:
    result = run_contract(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


@pytest.mark.parametrize(
    "injected",
    ["import pgkms", "from pgkms.wrap import wrap", "import cryptography.hazmat"],
)
def test_an_injected_import_breaks_the_contract(tmp_path: Path, injected: str) -> None:
    result = run_contract(tmp_path, injected)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "pgkms_independent.codec" in result.stdout
