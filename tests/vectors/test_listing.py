"""Directory listings: written with their modes, read back identically, always removed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pgkms_conformance.vectors.listing import (
    Listing,
    ListingError,
    TempDatadir,
    materialise,
    snapshot,
)

pytestmark = pytest.mark.req("VEC_06")

LISTING: Listing = {
    "pg_cryptokeys/": {"mode": 0o500},  # read-only directory: filled before its mode is set
    "pg_cryptokeys/0000": {"mode": 0o400, "content": "00ff"},
    "pg_cryptokeys/sub/": {"mode": 0o700},
    "pg_cryptokeys/sub/x": {"mode": 0o644, "content": ""},
    "PG_VERSION": {"mode": 0o600, "content": "31330a"},
}


def test_round_trip_and_cleanup() -> None:
    with TempDatadir(LISTING) as root:
        assert snapshot(root) == dict(sorted(LISTING.items()))
        base = root.parent
    assert not base.exists()


def test_cleanup_after_an_exception() -> None:
    made: list[Path] = []

    def failing_op() -> None:
        with TempDatadir(LISTING) as root:
            made.append(root.parent)
            raise RuntimeError("the op failed")

    with pytest.raises(RuntimeError):
        failing_op()
    assert made
    assert not made[0].exists()


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../b", "a//b", "./a"])
def test_paths_outside_the_datadir_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ListingError):
        materialise({bad: {"mode": 0o600, "content": ""}}, tmp_path)


def test_a_file_needs_content(tmp_path: Path) -> None:
    with pytest.raises(ListingError, match="hex 'content'"):
        materialise({"x": {"mode": 0o600}}, tmp_path)
