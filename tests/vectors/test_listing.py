"""Directory listings: written with their modes, read back identically, always removed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
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


_names = st.text(alphabet="0123456789ABCDEFabcdef_.-", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..")
)


@st.composite
def listings(draw: st.DrawFn) -> Listing:
    """Random trees: a few directories, each with a few files of random bytes and modes."""
    out: Listing = {}
    for d in draw(st.lists(_names, max_size=3, unique=True)):
        out[f"{d}/"] = {"mode": draw(st.sampled_from([0o700, 0o750, 0o755, 0o500]))}
        for f in draw(st.lists(_names, max_size=3, unique=True)):
            out[f"{d}/{f}"] = {
                "mode": draw(st.sampled_from([0o600, 0o640, 0o644, 0o400])),
                "content": draw(st.binary(max_size=40)).hex(),
            }
    for f in draw(st.lists(_names, max_size=2, unique=True)):
        if f"{f}/" not in out:
            out[f] = {"mode": 0o600, "content": draw(st.binary(max_size=8)).hex()}
    return out


@given(listings())
def test_any_listing_round_trips(listing: Listing) -> None:
    with TempDatadir(listing) as root:
        assert snapshot(root) == dict(sorted(listing.items()))
        base = root.parent
    assert not base.exists()
