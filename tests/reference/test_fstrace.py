"""The reference's filesystem trace (ADP_05) and its upgrade_keys operation (UPG_01)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pgkms.fs import OsFileSystem
from pgkms.tools.adapter import handle_line
from pgkms.tools.fstrace import TracingFileSystem

PASS = (b"p" * 70).hex()
OTHER = (b"q" * 70).hex()


def ask(**request: Any) -> dict[str, Any]:
    response, _ = handle_line(json.dumps({"id": 1, **request}))
    return response


@pytest.mark.req("ADP_05")
def test_only_mutating_calls_that_succeeded_are_recorded(tmp_path: Path) -> None:
    fs = TracingFileSystem(OsFileSystem(), str(tmp_path))
    fs.mkdir(str(tmp_path / "d"), 0o700)
    fs.create_file(str(tmp_path / "d" / "f"), b"abc", 0o600)
    assert fs.read_file(str(tmp_path / "d" / "f")) == b"abc"
    fs.list_dir(str(tmp_path / "d"))
    with pytest.raises(Exception, match="create"):
        fs.create_file(str(tmp_path / "d" / "f"), b"x", 0o600)  # exists: refused, not recorded
    fs.rename(str(tmp_path / "d" / "f"), str(tmp_path / "d" / "g"))
    fs.fsync_dir(str(tmp_path))
    assert fs.trace == [
        {"op": "mkdir", "path": "d", "mode": 0o700},
        {"op": "create", "path": "d/f", "mode": 0o600, "size": 3},
        {"op": "rename", "path": "d/f", "to": "d/g"},
        {"op": "fsync_dir", "path": "."},
    ]


@pytest.mark.req("ADP_05", "BOOT_04")
def test_bootstrap_reports_its_trace_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = ask(op="bootstrap", datadir=str(tmp_path / "a"), passphrase=PASS)
    assert plain["result"] == {}
    traced = ask(op="bootstrap", datadir=str(tmp_path / "b"), passphrase=PASS, trace_fs=True)
    ops = [(e["op"], e["path"]) for e in traced["result"]["fs_trace"]]
    assert ops[0] == ("mkdir", "pg_cryptokeys_tmp")
    assert ops[-4:] == [
        ("fsync_dir", "pg_cryptokeys_tmp"),
        ("fsync_dir", "."),
        ("rename", "pg_cryptokeys_tmp"),
        ("fsync_dir", "."),
    ]
    assert all("lock" not in path for _, path in ops)  # the lock file is not key state
    refused = ask(op="bootstrap", datadir=str(tmp_path / "b"), passphrase=PASS, trace_fs=True)
    assert refused["error"]["code"] == "keys_already_exist" and "fs_trace" not in refused["error"]
    bad = ask(op="bootstrap", datadir=str(tmp_path / "c"), passphrase=PASS, trace_fs="yes")
    assert bad["error"]["code"] == "malformed_request"


@pytest.mark.req("UPG_01")
def test_upgrade_keys_copies_byte_for_byte_or_nothing(tmp_path: Path) -> None:
    old, new, other = tmp_path / "old", tmp_path / "new", tmp_path / "other"
    for d, p in ((old, PASS), (new, PASS), (other, OTHER)):
        d.mkdir()
        assert ask(op="bootstrap", datadir=str(d), passphrase=p)["ok"]
    before = {f.name: f.read_bytes() for f in (other / "pg_cryptokeys").iterdir()}
    refused = ask(op="upgrade_keys", old_datadir=str(old), new_datadir=str(other), passphrase=OTHER)
    assert refused["error"]["code"] == "wrong_passphrase"
    assert {f.name: f.read_bytes() for f in (other / "pg_cryptokeys").iterdir()} == before
    assert not (other / "pg_cryptokeys_tmp").exists()
    done = ask(
        op="upgrade_keys",
        old_datadir=str(old),
        new_datadir=str(new),
        passphrase=PASS,
        trace_fs=True,
    )
    assert done["ok"]
    for name in ("0000", "0001", "0002"):
        assert (new / "pg_cryptokeys" / name).read_bytes() == (
            old / "pg_cryptokeys" / name
        ).read_bytes()
    assert done["result"]["fs_trace"][-1] == {"op": "fsync_dir", "path": "."}
