"""The explorer on both protocols: the spec keeps every invariant, the 2020 protocol does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from pgkms_conformance.crash.explorer import LEGACY, SPEC, Explorer, Report

CHAPTER = Path(__file__).parents[2] / "spec" / "chapters" / "crash-model.rst"
_reports: dict[tuple[str, str, bool], Report] = {}


def report(protocol: str, ordering: str = "subset", torn: bool = True) -> Report:
    key = (protocol, ordering, torn)
    if key not in _reports:
        chosen = SPEC if protocol == "spec" else LEGACY
        _reports[key] = Explorer(chosen, ordering=ordering, torn=torn).run()  # type: ignore[arg-type]
    return _reports[key]


@pytest.mark.req(
    "CRASH_07", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "REC_05", "REC_06", "START_04"
)
@pytest.mark.parametrize("ordering", ["subset", "prefix"])
@pytest.mark.parametrize("torn", [True, False])
def test_spec_protocol_keeps_every_invariant(ordering: str, torn: bool) -> None:
    r = report("spec", ordering, torn)
    assert len(r.trace) == 17
    assert len(r.states) > 10  # the exploration reached more than the start and the end
    assert r.counts() == {"I1": 0, "I2": 0, "I3": 0, "I4": 0}
    assert r.violations == []


@pytest.mark.req("CRASH_03", "CRASH_04")
def test_the_default_model_is_the_weakest_and_finds_the_most_states() -> None:
    sizes = {
        (o, t): len(report("spec", o, t).states)
        for o in ("subset", "prefix")
        for t in (True, False)
    }
    assert sizes[("subset", True)] > sizes[("prefix", True)] > sizes[("prefix", False)]
    assert sizes[("subset", True)] > sizes[("subset", False)] > sizes[("prefix", False)]


@pytest.mark.req("REC_02", "REC_05", "DISK_07")
def test_2020_protocol_loses_keys_and_changes_disk_on_failed_startup() -> None:
    r = report("2020")
    counts = r.counts()
    assert counts["I1"] > 0
    assert counts["I4"] > 0
    reasons = {reason for _, reason in r.classes()}
    assert any(reason.startswith("keys destroyed") for reason in reasons)
    assert any(reason.startswith("keys unreachable") for reason in reasons)
    assert any("wrong_passphrase" in reason and "replace_current" in reason for reason in reasons)


@pytest.mark.req("DISK_07")
def test_2020_loses_keys_even_on_an_ordered_journaling_filesystem() -> None:
    r = report("2020", "prefix", False)
    assert any(reason.startswith("keys destroyed") for _, reason in r.classes())


def test_minimal_examples_are_the_earliest_crash() -> None:
    r = report("2020")
    for (inv, reason), example in r.classes().items():
        same = [v for v in r.violations if (v.invariant, v.reason) == (inv, reason)]
        assert example.crash_point == min(v.crash_point for v in same)


@pytest.mark.req("CRASH_08")
def test_every_2020_violation_class_is_explained_in_the_crash_model_chapter() -> None:
    text = CHAPTER.read_text(encoding="utf-8")
    for inv, reason in report("2020").classes():
        assert f"{inv}: {reason}" in text, reason
