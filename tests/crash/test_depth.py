"""I3 (REC_06) two crashes deep: a crash in recovery, a crash in the recovery after it, then a
clean startup ends as the uninterrupted startup did; and the deeper check is not vacuous."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgkms.errors import NoValidKeySet
from pgkms.fs import FileSystem
from pgkms.internal_keys import InternalKeys
from pgkms.secret import Secret
from pgkms.startup import startup
from pgkms_conformance.crash.explorer import SPEC, Explorer, explore

pytestmark = pytest.mark.req("CRASH_07", "REC_06")


@pytest.mark.parametrize("name", ["spec", "upgrade"])
def test_two_crashes_deep_the_spec_keeps_every_invariant(name: str) -> None:
    report = explore(name, depth=2)
    assert report.violations == []
    assert len(report.depths) == 2
    (first, _), (second, _) = report.depths
    assert first == report.recovery_states > 0
    assert second > 0  # the second recovery was crashed too, not skipped


def test_each_depth_is_reported_and_the_first_is_unchanged_by_going_deeper() -> None:
    shallow, deep = explore("2020", depth=1), explore("2020", depth=3)
    assert len(shallow.depths) == 1 and len(deep.depths) == 3
    assert deep.depths[0] == shallow.depths[0] == (66, 9)
    assert deep.counts() == shallow.counts()  # the 2020 recovery adds no I3 class deeper


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Explorer(SPEC, depth=0)


def _markers(fs: FileSystem, d: str) -> list[str]:
    return sorted(n for n in fs.list_dir(d) if n.startswith("recovering-"))


def _clear(fs: FileSystem, d: str) -> None:
    markers = _markers(fs, d)
    for name in markers:
        fs.unlink(f"{d}/{name}")
    if markers:
        fs.fsync_dir(d)


def _twice_only(fs: FileSystem, d: str, passphrase: Secret) -> InternalKeys:
    """A recovery that tolerates one interruption but not two: it durably counts its runs in
    marker files, refuses a third run, and clears the markers once it has run to the end."""
    if fs.stat(f"{d}/pg_cryptokeys_tmp") is None:
        _clear(fs, d)
        return startup(d, passphrase, fs)
    markers = _markers(fs, d)
    if len(markers) >= 2:
        raise NoValidKeySet("recovery interrupted twice already")
    fs.create_file(f"{d}/recovering-{len(markers) + 1}", b"", 0o600)
    fs.fsync_dir(d)
    try:
        return startup(d, passphrase, fs)
    finally:
        _clear(fs, d)


def test_a_recovery_that_survives_one_crash_but_not_two_is_caught_only_two_deep() -> None:
    broken = replace(SPEC, name="spec-twice-only", startup=_twice_only)
    one_deep = Explorer(broken, depth=1).run()
    two_deep = Explorer(broken, depth=2).run()
    assert one_deep.counts()["I3"] == 0
    assert two_deep.counts()["I3"] > 0
    reasons = {reason for inv, reason in two_deep.classes() if inv == "I3"}
    assert any(reason.startswith("2 crashes in recovery") for reason in reasons), reasons
    example = next(v for v in two_deep.violations if v.invariant == "I3")
    assert "then the second recovery" in example.detail
