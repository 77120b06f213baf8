"""An fsync that fails with EIO, at each fsync of a rotation and of a bootstrap (ROT_07, ROT_08,
BOOT_05): injected into the real adapter process with ``strace``.

A rotation issues 8 fsyncs: the three new files (1..3), pg_cryptokeys_tmp (4), PGDATA (5), the
emptied pg_cryptokeys (6), PGDATA after its removal (7), PGDATA after the rename (8). Its point
of no return is the first removal, between fsyncs 5 and 6. A bootstrap issues 6: the three
files, pg_cryptokeys_tmp, PGDATA, and PGDATA after the rename.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pgkms_independent.entropy import Entropy
from pgkms_independent.failures import Code, Failure
from pgkms_independent.keystore import Cluster

from tests.independent.processes import IVS, KEYS, NEW, OLD, STRACE, Adapter, code, hexes

ROTATION_FSYNCS = 8
BOOTSTRAP_FSYNCS = 6
POINT_OF_NO_RETURN = 5  # fsyncs up to this one come before the first removal


def failing_fsync(k: int) -> list[str]:
    """A prefix that runs the adapter with its k-th fsync failing with EIO."""
    return [
        STRACE,
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=fsync",
        "-e",
        f"inject=fsync:error=EIO:when={k}",
    ]


def keys_under(datadir: Path, passphrase: bytes) -> list[bytes] | Code:
    try:
        return [k.expose() for k in Cluster(str(datadir)).startup(passphrase).keys]
    except Failure as failure:
        return failure.code


def entries(datadir: Path) -> list[str]:
    return sorted(name for name in os.listdir(datadir) if name != "pg_cryptokeys.lock")


@pytest.mark.req("ROT_07", "ROT_08", "ROT_04", "ROT_05", "ROT_06")
@pytest.mark.parametrize("k", range(1, ROTATION_FSYNCS + 2))
def test_an_fsync_failure_during_rotation(tmp_path: Path, k: int) -> None:
    Cluster(str(tmp_path)).bootstrap(OLD, Entropy([*KEYS, *IVS]))
    with Adapter(failing_fsync(k)) as adapter:
        answer = adapter.call(
            "rotate",
            datadir=str(tmp_path),
            old_passphrase=OLD.hex(),
            new_passphrase=NEW.hex(),
            ivs=hexes(IVS),
        )
    if k > ROTATION_FSYNCS:  # no such fsync: the rotation has exactly ROTATION_FSYNCS
        assert answer["ok"], answer
        assert keys_under(tmp_path, NEW) == KEYS
    elif k <= POINT_OF_NO_RETURN:  # ROT_07: the disk as before, the failure's own code
        assert code(answer) == "storage_error"
        assert entries(tmp_path) == ["pg_cryptokeys"]
        assert keys_under(tmp_path, OLD) == KEYS
    else:  # ROT_08: rotation_incomplete, naming the new passphrase; tmp kept
        assert code(answer) == "rotation_incomplete"
        assert "NEW passphrase" in answer["error"]["message"]
        assert OLD.hex() not in answer["error"]["message"]
        assert NEW.hex() not in answer["error"]["message"]
        if k < ROTATION_FSYNCS:
            assert "pg_cryptokeys_tmp" in entries(tmp_path)
        else:
            assert entries(tmp_path) == ["pg_cryptokeys"]
        assert keys_under(tmp_path, NEW) == KEYS  # and this startup completes the rotation
        assert entries(tmp_path) == ["pg_cryptokeys"]


@pytest.mark.req("BOOT_05", "BOOT_04")
@pytest.mark.parametrize("k", range(1, BOOTSTRAP_FSYNCS + 2))
def test_an_fsync_failure_during_bootstrap(tmp_path: Path, k: int) -> None:
    with Adapter(failing_fsync(k)) as adapter:
        answer = adapter.call(
            "bootstrap", datadir=str(tmp_path), passphrase=OLD.hex(), keys=hexes(KEYS)
        )
    if k > BOOTSTRAP_FSYNCS:
        assert answer["ok"], answer
        assert keys_under(tmp_path, OLD) == KEYS
    elif k < BOOTSTRAP_FSYNCS:  # before the rename: nothing is left that blocks a retry
        assert code(answer) == "storage_error"
        assert entries(tmp_path) == []
        Cluster(str(tmp_path)).bootstrap(OLD, Entropy([*KEYS, *IVS]))
        assert keys_under(tmp_path, OLD) == KEYS
    else:  # after the rename the key set is in place; only its durability is unconfirmed
        assert code(answer) == "storage_error"
        assert entries(tmp_path) == ["pg_cryptokeys"]
        assert keys_under(tmp_path, OLD) == KEYS
