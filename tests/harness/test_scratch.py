"""The harness's scratch directories: in memory when the machine has a usable tmpfs, under the
user's TMPDIR when one is set, and never left behind; and nothing written where a run starts."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.internal.conjecture import providers
from pgkms_conformance import scratch
from pgkms_conformance.harness import properties
from pgkms_conformance.harness.concurrency import Stress
from pgkms_conformance.harness.run import Config, run_harness

from tests.harness.helpers import REFERENCE

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from pgkms_conformance.cli import main; main()"]
SHM = "tmpfs /dev/shm tmpfs rw,nosuid,nodev,relatime,size=1024k 0 0\n"


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A pretend memory file system (a plain directory) and mount table; no user choice."""
    memory = tmp_path / "shm"
    memory.mkdir()
    mounts = tmp_path / "mounts"
    monkeypatch.setattr(scratch, "MEMORY_FS", memory)
    monkeypatch.setattr(scratch, "MOUNTS", mounts)
    monkeypatch.setattr(scratch, "MIN_FREE_BYTES", 0)
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.delenv("TMPDIR", raising=False)
    scratch.memory_fs_usable.cache_clear()
    yield memory
    scratch.memory_fs_usable.cache_clear()


def _mount(machine: Path, line: str) -> None:
    (machine.parent / "mounts").write_text(line.replace("/dev/shm", str(machine)))


def test_a_usable_memory_file_system_is_used(machine: Path) -> None:
    _mount(machine, SHM)
    assert scratch.scratch_dir() == str(machine)
    made = scratch.mkdtemp("pgkms-test-")
    assert made.parent == machine and made.stat().st_mode & 0o777 == 0o700
    made.rmdir()


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ("", "not mounted"),
        ("/dev/vda /dev/shm ext4 rw 0 0\n", "not a tmpfs"),
        (SHM.replace("nodev", "nodev,noexec"), "noexec: a passphrase command there cannot run"),
        (SHM + "/dev/vda /dev/shm ext4 rw 0 0\n", "a later mount hides the tmpfs"),
    ],
)
def test_an_unusable_memory_file_system_is_not_used(machine: Path, table: str, why: str) -> None:
    _mount(machine, table)
    assert scratch.scratch_dir() is None, why


def test_too_little_room_falls_back_to_the_disk(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mount(machine, SHM)
    # More than the whole file system holds: other tests free space on it meanwhile, so its
    # free space at this moment would be a racy bound.
    size = os.statvfs(machine)
    monkeypatch.setattr(scratch, "MIN_FREE_BYTES", size.f_blocks * size.f_frsize + 1)
    assert scratch.scratch_dir() is None


def test_an_unreadable_mount_table_falls_back_to_the_disk(machine: Path) -> None:
    assert not (machine.parent / "mounts").exists()
    assert scratch.scratch_dir() is None


def test_the_users_tmpdir_wins(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _mount(machine, SHM)
    monkeypatch.setenv("TMPDIR", str(machine.parent))
    assert scratch.scratch_dir() is None  # tempfile's choice, which is TMPDIR
    monkeypatch.delenv("TMPDIR")
    monkeypatch.setattr(tempfile, "tempdir", str(machine.parent))
    assert scratch.scratch_dir() is None


def test_a_run_makes_its_directories_in_scratch_and_removes_them(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _mount(machine, SHM)
    parents: list[Path] = []
    real = scratch.mkdtemp

    def watched(prefix: str) -> Path:
        made = real(prefix)
        parents.append(made.parent)
        return made

    monkeypatch.setattr(scratch, "mkdtemp", watched)
    with_directories = [ROOT / "vectors" / "key_directory.json"]
    stages = ("vectors", "scenarios", "durability")
    report = run_harness(Config(REFERENCE, with_directories, examples=5, stages=stages))
    assert report.passed, [c.name for c in report.failures]
    assert len(parents) >= 3 and set(parents) == {machine}  # images, workspaces
    assert list(machine.iterdir()) == []


def test_the_concurrency_stress_races_on_the_disk(machine: Path) -> None:
    """Its file operations open the race windows it needs (``scratch``): never in memory."""
    _mount(machine, SHM)
    stress = Stress(REFERENCE, seed=0, max_procs=2)
    try:
        assert stress.ws.root.parent == Path(tempfile.gettempdir())
        assert stress.ws.root.parent != machine
    finally:
        stress.ws.close()


def test_a_run_writes_nothing_into_its_current_directory(tmp_path: Path) -> None:
    """Hypothesis keeps caches in ``.hypothesis/`` under the current directory (the constants
    of local modules, its Unicode table); the property stage uses neither, so a run in the
    user's directory leaves it as it was."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTHESIS")}
    command = [*CLI, "run", "--impl", "reference", "--stages", "protocol,properties"]
    done = subprocess.run(
        [*command, "--examples", "30"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stdout.decode()[-2000:]
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_local_constants_are_off_while_a_property_runs_and_restored_after() -> None:
    original = providers._get_local_constants
    seen: list[int] = []

    def property_body() -> None:
        with properties._without_local_constants():
            seen.append(len(providers._get_local_constants()))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        property_body()
    assert seen == [0]
    assert providers._get_local_constants is original
