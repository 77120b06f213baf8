"""``pgkms-conformance crash`` / ``python -m pgkms_conformance.crash``."""

from __future__ import annotations

import pytest
from pgkms_conformance.crash.cli import main


def test_prints_the_figures_for_both_protocols(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "protocol spec" in out
    assert "protocol 2020" in out
    assert "operations in the rotation trace: 17 mutating" in out
    assert "I1 0, I2 0, I3 0, I4 0" in out
    assert "violation classes:" in out  # the 2020 protocol's


def test_traces(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--protocol", "2020", "--traces"]) == 0
    out = capsys.readouterr().out
    assert "-- crash --" in out
    assert "startup with the old passphrase" in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--protocol", "nonsense"])
    assert exc.value.code == 2


@pytest.mark.req("CRASH_07", "REC_06", "UPG_01")
def test_prints_the_figures_per_depth_and_for_the_upgrade(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--protocol", "upgrade", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "protocol upgrade" in out
    assert "operations in the upgrade trace: 17 mutating" in out
    assert "depth 1: 26 (0 new); depth 2: 11 (0 new); depth 3:" in out
    assert "0 neither" in out
    assert "I1 0, I2 0, I3 0, I4 0" in out
    with pytest.raises(SystemExit) as exc:
        main(["--depth", "0"])
    assert exc.value.code == 2
