"""The simulated filesystem: what it records, and which states a crash may leave (CRASH_01..05)."""

from __future__ import annotations

import pytest
from pgkms.errors import StorageError
from pgkms_conformance.crash.simfs import SimFileSystem, SimulatedCrash

pytestmark = pytest.mark.req("CRASH_01", "CRASH_02", "CRASH_03", "CRASH_04", "CRASH_05", "CRASH_06")


def paths(fs: SimFileSystem, **kw: object) -> set[tuple[str, ...]]:
    return {tuple(p for p, _, _ in s.image) for s in fs.crash_states(**kw)}  # type: ignore[arg-type]


def test_unsynced_file_data_may_come_back_empty_half_or_zeroed() -> None:
    fs = SimFileSystem()
    fs.create_file("pgdata/f", b"abcdef", 0o600)
    fs.fsync_dir("pgdata")
    contents = {s.image[0][2] for s in fs.crash_states()}
    assert contents == {b"abcdef", b"", b"abc", bytes(6)}
    assert {s.image[0][2] for s in fs.crash_states(torn=False)} == {b"abcdef", b""}
    fs.fsync_file("pgdata/f")
    assert [s.image for s in fs.crash_states()] == [(("f", 0o600, b"abcdef"),)]


def test_a_file_fsync_does_not_make_its_name_durable() -> None:
    fs = SimFileSystem()
    fs.create_file("pgdata/f", b"x", 0o600)
    fs.fsync_file("pgdata/f")
    assert paths(fs) == {("f",), ()}
    assert fs.durable_image() == ()
    fs.fsync_dir("pgdata")
    assert paths(fs) == {("f",)}


def test_a_lost_directory_takes_its_contents_with_it() -> None:
    fs = SimFileSystem()
    fs.mkdir("pgdata/d", 0o700)
    fs.create_file("pgdata/d/f", b"x", 0o600)
    fs.fsync_file("pgdata/d/f")
    fs.fsync_dir("pgdata/d")
    assert paths(fs) == {("d/", "d/f"), ()}


def test_rename_is_atomic_never_both_names_nor_neither() -> None:
    fs = SimFileSystem([("a/", 0o700, None), ("a/f", 0o600, b"1")])
    fs.rename("pgdata/a", "pgdata/b")
    assert paths(fs) == {("a/", "a/f"), ("b/", "b/f")}


def test_subset_ordering_allows_a_later_change_without_an_earlier_one() -> None:
    fs = SimFileSystem([("keep", 0o600, b"k")])
    fs.create_file("pgdata/new", b"n", 0o600)
    fs.fsync_file("pgdata/new")
    fs.unlink("pgdata/keep")
    assert paths(fs) == {("keep", "new"), ("keep",), ("new",), ()}
    # prefix ordering: the unlink can only survive with the create before it
    assert paths(fs, ordering="prefix") == {("keep", "new"), ("keep",), ("new",)}


def test_each_image_is_reported_once_with_its_smallest_loss() -> None:
    fs = SimFileSystem()
    fs.mkdir("pgdata/d", 0o700)
    fs.rmdir("pgdata/d")
    states = fs.crash_states()
    assert len(states) == len({s.image for s in states}) == 2
    empty = next(s for s in states if s.image == ())
    assert empty.lost == ()  # keeping both changes also leaves nothing: no loss needed


def test_crash_after_stops_before_the_next_mutation_and_reads_never_crash() -> None:
    fs = SimFileSystem(crash_after=1)
    fs.mkdir("pgdata/d", 0o700)
    assert fs.stat("pgdata/d") is not None
    assert fs.list_dir("pgdata") == ["d"]
    with pytest.raises(SimulatedCrash):
        fs.fsync_dir("pgdata")
    assert [str(op) for op in fs.trace if op.mutating] == ["mkdir pgdata/d"]


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        ([], lambda fs: fs.read_file("pgdata/missing"), "no such file"),
        ([("d/", 0o700, None)], lambda fs: fs.mkdir("pgdata/d", 0o700), "file exists"),
        ([("f", 0o600, b"")], lambda fs: fs.create_file("pgdata/f", b"", 0o600), "file exists"),
        ([("d/", 0o700, None), ("d/f", 0o600, b"")], lambda fs: fs.rmdir("pgdata/d"), "not empty"),
        ([("d/", 0o700, None)], lambda fs: fs.unlink("pgdata/d"), "no such file"),
        ([("d/", 0o700, None)], lambda fs: fs.rename("pgdata/d", "pgdata/d/x"), "across"),
        ([], lambda fs: fs.stat("/etc/passwd"), "outside"),
        ([("f", 0o600, b"")], lambda fs: fs.list_dir("pgdata/f"), "not a directory"),
    ],
)
def test_invalid_operations_raise_storage_errors(setup, action, message) -> None:  # type: ignore[no-untyped-def]
    fs = SimFileSystem(setup)
    with pytest.raises(StorageError, match=message):
        action(fs)
    assert fs.mutations == 0
