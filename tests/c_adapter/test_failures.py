"""Failures in the middle of a procedure, injected into the C adapter's own system calls with
``strace -e inject`` (bounded: one adapter process per case, about 0.3 s each):

* BOOT_05: a bootstrap whose fsync fails leaves no ``pg_cryptokeys_tmp``, and an incomplete
  leftover from an interrupted bootstrap does not block the next one;
* ROT_07: a rotation failing before its point of no return removes its temporary set and
  reports the failure's own code, the old set intact;
* ROT_08: a rotation failing at or past it answers ``rotation_incomplete``, keeps the
  temporary set, and the next startup under the new passphrase completes the rotation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pgkms_conformance.protocol.client import AdapterClient, Response

from tests.c_adapter.conftest import Built

P1, P2 = (b"1" * 64).hex(), (b"2" * 64).hex()


def _call(command: list[str], op: str, **params: str) -> Response:
    with AdapterClient(command, timeout=20) as client:
        client.hello()
        return client.call(op, **params)


def _failing(binary: Path, syscall: str, when: int) -> list[str]:
    """The adapter with the ``when``-th call of ``syscall`` failing with EIO."""
    if shutil.which("strace") is None:
        pytest.fail("strace is needed to inject failures: apt-get install strace")
    inject = f"inject={syscall}:error=EIO:when={when}"
    return ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}", "-e", inject,
            str(binary)]  # fmt: skip


def _bootstrapped(binary: Path, root: Path) -> Path:
    root.mkdir()
    assert _call([str(binary)], "bootstrap", datadir=str(root), passphrase=P1).ok
    return root


@pytest.mark.req("BOOT_05")
@pytest.mark.parametrize("when", [1, 4, 5])  # a key file's, the tmp directory's, PGDATA's fsync
def test_a_failed_bootstrap_leaves_nothing_to_block_a_retry(
    c_adapter: Built, tmp_path: Path, when: int
) -> None:
    root = tmp_path / "pgdata"
    root.mkdir()
    answer = _call(_failing(c_adapter.binary, "fsync", when), "bootstrap", datadir=str(root),
                   passphrase=P1)  # fmt: skip
    assert answer.error_code == "storage_error"
    assert sorted(p.name for p in root.iterdir()) == ["pg_cryptokeys.lock"]
    assert _call([str(c_adapter.binary)], "bootstrap", datadir=str(root), passphrase=P1).ok


@pytest.mark.req("BOOT_05", "BOOT_01")
def test_an_incomplete_leftover_is_removed_a_complete_one_refused(
    c_adapter: Built, tmp_path: Path
) -> None:
    root = tmp_path / "pgdata"
    root.mkdir()
    tmp = root / "pg_cryptokeys_tmp"
    tmp.mkdir(mode=0o700)
    (tmp / "0000").write_bytes(b"\0" * 132)
    assert _call([str(c_adapter.binary)], "bootstrap", datadir=str(root), passphrase=P1).ok
    assert not tmp.exists()
    shutil.copytree(root / "pg_cryptokeys", tmp)
    shutil.rmtree(root / "pg_cryptokeys")
    answer = _call([str(c_adapter.binary)], "bootstrap", datadir=str(root), passphrase=P1)
    assert answer.error_code == "keys_already_exist"
    assert sorted(p.name for p in tmp.iterdir()) == ["0000", "0001", "0002"]


@pytest.mark.req("ROT_07")
@pytest.mark.parametrize(("syscall", "when"), [("fsync", 2), ("fsync", 4), ("fsync", 5),
                                               ("mkdirat", 1)])  # fmt: skip
def test_a_rotation_failing_before_the_point_of_no_return_leaves_the_old_set(
    c_adapter: Built, tmp_path: Path, syscall: str, when: int
) -> None:
    root = _bootstrapped(c_adapter.binary, tmp_path / "pgdata")
    before = {p.name: p.read_bytes() for p in (root / "pg_cryptokeys").iterdir()}
    answer = _call(_failing(c_adapter.binary, syscall, when), "rotate", datadir=str(root),
                   old_passphrase=P1, new_passphrase=P2)  # fmt: skip
    assert answer.error_code == "storage_error"
    assert not (root / "pg_cryptokeys_tmp").exists()
    assert {p.name: p.read_bytes() for p in (root / "pg_cryptokeys").iterdir()} == before
    assert _call([str(c_adapter.binary)], "startup", datadir=str(root), passphrase=P1).ok


@pytest.mark.req("ROT_08", "REC_04")
@pytest.mark.parametrize(("syscall", "when"), [("unlinkat", 1), ("fsync", 6), ("renameat", 1)])
def test_a_rotation_failing_past_the_point_of_no_return_says_so(
    c_adapter: Built, tmp_path: Path, syscall: str, when: int
) -> None:
    root = _bootstrapped(c_adapter.binary, tmp_path / "pgdata")
    answer = _call(_failing(c_adapter.binary, syscall, when), "rotate", datadir=str(root),
                   old_passphrase=P1, new_passphrase=P2)  # fmt: skip
    assert answer.error_code == "rotation_incomplete"
    assert "new passphrase" in (answer.error_message or "")
    assert (root / "pg_cryptokeys_tmp").is_dir()
    opened = _call([str(c_adapter.binary)], "startup", datadir=str(root), passphrase=P2)
    assert opened.ok, opened.error_code
    assert not (root / "pg_cryptokeys_tmp").exists()
