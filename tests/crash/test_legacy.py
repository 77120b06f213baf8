"""The 2020 protocol as the facts file describes it (rotation steps, recovery by counting)."""

from __future__ import annotations

import pytest
from pgkms.errors import RecordSizeInvalid
from pgkms_conformance.crash.explorer import LEGACY, Explorer, Scenario
from pgkms_conformance.crash.legacy import legacy_decide, legacy_recover
from pgkms_conformance.crash.simfs import SimFileSystem

pytestmark = pytest.mark.req("REC_02")


def with_tmp(files: dict[str, bytes]) -> list[tuple[str, int, bytes | None]]:
    base = list(Scenario().initial_image())
    base.append(("pg_cryptokeys_tmp/", 0o700, None))
    base += [(f"pg_cryptokeys_tmp/{n}", 0o600, c) for n, c in files.items()]
    return base


def test_rotation_never_fsyncs_the_data_directory() -> None:
    trace = Explorer(LEGACY).rotation_trace()
    assert "fsync_dir pgdata" not in [str(op) for op in trace]
    assert str(trace[-1]) == "fsync_dir pgdata/pg_cryptokeys"
    assert [str(op) for op in trace[:2]] == [
        "mkdir pgdata/pg_cryptokeys_tmp",
        "fsync_dir pgdata/pg_cryptokeys_tmp",
    ]


def test_only_tmp_is_renamed_whatever_it_holds() -> None:
    fs = SimFileSystem([("pg_cryptokeys_tmp/", 0o700, None)])
    assert legacy_recover(fs, "pgdata") == "rename_tmp"
    assert fs.image() == (("pg_cryptokeys/", 0o700, None),)


def test_three_files_win_the_count_even_with_garbage_content() -> None:
    fs = SimFileSystem(with_tmp(dict.fromkeys(("0000", "0001", "0002"), bytes(132))))
    # zero-filled records: id 0 in range, so they are "read", counted, and replace the good set
    assert legacy_decide(fs, "pgdata") == "replace_current"


def test_fewer_than_three_files_remove_tmp() -> None:
    fs = SimFileSystem(with_tmp({"0000": bytes(132)}))
    assert legacy_recover(fs, "pgdata") == "remove_tmp"
    assert fs.image() == Scenario().initial_image()


def test_a_short_file_in_tmp_fails_every_startup_before_any_change() -> None:
    image = with_tmp({"0000": b""})
    fs = SimFileSystem(image)
    with pytest.raises(RecordSizeInvalid, match="found 0"):
        legacy_recover(fs, "pgdata")
    assert fs.image() == tuple(sorted(image))
