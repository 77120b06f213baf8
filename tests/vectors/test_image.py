"""The directory image (``pgkms_conformance.image``): written with its modes, read back identically,
always removed; its JSON, frozen and shape forms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pgkms_conformance.image import (
    Entry,
    ListingError,
    ListingJson,
    TempDatadir,
    differences,
    freeze,
    from_json,
    materialise,
    shape,
    snapshot,
    thaw,
    to_json,
)

pytestmark = pytest.mark.req("VEC_06")

LISTING: ListingJson = {
    "pg_cryptokeys/": {"mode": 0o500},  # read-only directory: filled before its mode is set
    "pg_cryptokeys/0000": {"mode": 0o400, "content": "00ff"},
    "pg_cryptokeys/sub/": {"mode": 0o700},
    "pg_cryptokeys/sub/x": {"mode": 0o644, "content": ""},
    "PG_VERSION": {"mode": 0o600, "content": "31330a"},
}


def test_round_trip_and_cleanup() -> None:
    with TempDatadir(from_json(LISTING)) as root:
        assert to_json(snapshot(root)) == dict(sorted(LISTING.items()))
        base = root.parent
    assert not base.exists()


def test_cleanup_after_an_exception() -> None:
    made: list[Path] = []

    def failing_op() -> None:
        with TempDatadir(from_json(LISTING)) as root:
            made.append(root.parent)
            raise RuntimeError("the op failed")

    with pytest.raises(RuntimeError):
        failing_op()
    assert made
    assert not made[0].exists()


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../b", "a//b", "./a"])
def test_paths_outside_the_datadir_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ListingError):
        materialise(from_json({bad: {"mode": 0o600, "content": ""}}), tmp_path)


def test_a_file_needs_content(tmp_path: Path) -> None:
    with pytest.raises(ListingError, match="hex 'content'"):
        from_json({"x": {"mode": 0o600}})


_names = st.text(alphabet="0123456789ABCDEFabcdef_.-", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..")
)


@st.composite
def listings(draw: st.DrawFn) -> ListingJson:
    """Random trees: a few directories, each with a few files of random bytes and modes."""
    out: ListingJson = {}
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
def test_any_listing_round_trips(listing: ListingJson) -> None:
    with TempDatadir(from_json(listing)) as root:
        assert to_json(snapshot(root)) == dict(sorted(listing.items()))
        base = root.parent
    assert not base.exists()


def test_json_form_refuses_what_cannot_be_a_directory_entry() -> None:
    with pytest.raises(ListingError, match="not hex"):
        from_json({"x": {"mode": 0o600, "content": "zz"}})
    with pytest.raises(ListingError, match="permission bits"):
        from_json({"x/": {"mode": "0700"}})
    with pytest.raises(ListingError, match="permission bits"):
        from_json({"x/": {"mode": 0o10000}})


def test_frozen_form_round_trips_and_is_canonical() -> None:
    listing = from_json(LISTING)
    image = freeze(listing)
    assert [path for path, _, _ in image] == sorted(LISTING)
    assert thaw(image) == dict(sorted(listing.items()))
    assert freeze(dict(reversed(listing.items()))) == image


def test_unreadable_entries_say_what_they_are_never_their_bytes(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "link").symlink_to("/etc/passwd")
    os.mkfifo(root / "fifo", 0o600)
    found = to_json(snapshot(root))
    assert found == {"fifo": {"mode": 0o600, "kind": "other"}, "link": found["link"]}
    assert found["link"]["kind"] == "symlink" and "passwd" not in str(found)
    # and materialise leaves out what it cannot make again
    again = tmp_path / "again"
    again.mkdir()
    materialise(snapshot(root), again)
    assert list(again.iterdir()) == []


def test_shape_keeps_names_kinds_modes_sizes_and_record_ids_only() -> None:
    a = from_json({"k/": {"mode": 0o700}, "k/0000": {"mode": 0o600, "content": "01000000aa"}})
    rewrapped = {**a, "k/0000": Entry(0o600, bytes.fromhex("01000000bb"))}
    assert shape(a) == shape(rewrapped)
    assert differences(a, rewrapped, False, "ROT_02", "ROT_06") == []
    other_id = {**a, "k/0000": Entry(0o600, bytes.fromhex("02000000aa"))}
    assert shape(a) != shape(other_id)
    assert [r for r, _ in differences(a, other_id, False, "ROT_02", "ROT_06")] == ["DISK_03"]
    longer = {**a, "k/0000": Entry(0o600, bytes.fromhex("01000000aaaa"))}
    assert shape(a) != shape(longer)
    as_dir = {**a, "k/0000": Entry(0o600, None)}
    assert shape(a) != shape(as_dir)
