"""The harness commands' seconds options refuse what is no timeout, naming the value."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest
from pgkms_conformance.harness import cli as run_cli
from pgkms_conformance.harness import stress
from pgkms_conformance.harness.options import positive_seconds
from pgkms_conformance.mutants import cli as mutants_cli


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "-inf", "abc", ""])
def test_what_is_no_number_of_seconds_is_refused_by_name(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=f"above 0, found {text!r}"):
        positive_seconds(text)


@pytest.mark.parametrize(("text", "value"), [("2.5", 2.5), ("1e-3", 0.001), ("10", 10.0)])
def test_positive_seconds_are_taken(text: str, value: float) -> None:
    assert positive_seconds(text) == value


@pytest.mark.parametrize(
    ("configure", "argv"),
    [
        (run_cli.configure, ["--impl", "reference", "--timeout", "nan"]),
        (stress.configure, ["--impl", "reference", "--time-limit", "inf"]),
        (mutants_cli.configure, ["--timeout", "0"]),
    ],
)
def test_each_command_uses_it(
    configure: Callable[[argparse.ArgumentParser], None],
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="pgkms-conformance")
    configure(parser)
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(argv)
    assert stopped.value.code == 2
    assert "expected a number of seconds above 0" in capsys.readouterr().err
