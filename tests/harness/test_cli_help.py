"""``pgkms-conformance --version`` and ``--help``: plain text, every tool listed."""

from __future__ import annotations

import importlib.metadata

import pytest
from pgkms_conformance.cli import COMMANDS, main


def test_version_names_the_toolkit_and_its_contracts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"pgkms-conformance {importlib.metadata.version('pgkms')} ")
    assert "adapter protocol 1" in out and "pgkms-harness-report/" in out


def test_help_is_plain_text_and_lists_every_tool(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out
    for name in COMMANDS:
        assert f"    {name}" in out, name
