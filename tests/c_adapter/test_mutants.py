"""Every seeded durability mutant of the C adapter builds, and misses exactly its own
durability point, as the system calls show.

Each mutant skips one fsync (or the exclusive creation) of one procedure (the template's
README.md names the requirement it breaks). Judging them is the job of
``pgkms-conformance run --trace-syscalls``; this test checks the seeding itself: under
``strace``, each mutant's calls for bootstrap, rotation and both recovery decisions are the real
adapter's with only the expected fsync calls missing (or ``O_EXCL`` turned into ``O_TRUNC``),
in only the expected procedures. About 25 s of building and 5 s of tracing.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.protocol.client import AdapterClient

from tests.c_adapter.build import SOURCE, make, mutant_names
from tests.c_adapter.conftest import Built

P1, P2 = (b"1" * 64).hex(), (b"2" * 64).hex()
PROCEDURES = ("bootstrap", "rotate", "discard", "adopt")
# which procedures each mutant changes (all others must trace exactly as the real adapter)
AFFECTS = {
    "boot_": {"bootstrap"},
    "rot_": {"rotate"},
    "rec_no_dir_fsync_before_rmdir": {"discard", "adopt"},
    "rec_no_pgdata_fsync_after_rmdir": {"discard", "adopt"},
    "rec_no_pgdata_fsync_after_rename": {"adopt"},
    "no_excl_create": {"bootstrap", "rotate"},
}
README_POINTS = ("BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "DISK_07")
TRACED = "trace=fsync,fdatasync,openat,mkdirat,renameat,renameat2,unlinkat,rename,unlink,rmdir"


def _affected(name: str) -> set[str]:
    return next(v for k, v in AFFECTS.items() if name.startswith(k))


def _call(binary: Path, op: str, **params: str) -> None:
    with AdapterClient([str(binary)], timeout=20) as client:
        client.hello()
        answer = client.call(op, **params)
        assert answer.ok, (op, answer.error_code, answer.error_message)


def _prepare(real: Path, root: Path, procedure: str) -> Callable[[Path], None]:
    """Lay out ``root`` for ``procedure`` with the real adapter; return the traced step."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    d = str(root)
    if procedure == "bootstrap":
        return lambda b: _call(b, "bootstrap", datadir=d, passphrase=P1)
    _call(real, "bootstrap", datadir=d, passphrase=P1)
    if procedure == "rotate":
        return lambda b: _call(b, "rotate", datadir=d, old_passphrase=P1, new_passphrase=P2)
    tmp = root / "pg_cryptokeys_tmp"
    if procedure == "discard":  # current valid, a partial temporary set: REC_03
        tmp.mkdir(mode=0o700)
        (tmp / "0000").write_bytes(b"torn")
    else:  # current damaged, a complete temporary set: REC_04
        shutil.copytree(root / "pg_cryptokeys", tmp)
        (root / "pg_cryptokeys" / "0001").unlink()
    return lambda b: _call(b, "recover", datadir=d, passphrase=P1)


def _syscalls(binary: Path, real: Path, root: Path, procedure: str, log: Path) -> list[str]:
    step = _prepare(real, root, procedure)
    wrapper = root.parent / "traced"
    wrapper.write_text(f'#!/bin/sh\nexec strace -f -qq -y -e {TRACED} -o {log} {binary} "$@"\n')
    wrapper.chmod(0o755)
    step(wrapper)
    lines = []
    for line in log.read_text().splitlines():
        call = re.sub(r"^\d+\s+", "", line)  # the pid differs from run to run
        if call.startswith("fsync") or "pg_cryptokeys" in call:
            lines.append(call)
    return lines


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


@pytest.mark.req("BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "DISK_07")
def test_each_mutant_misses_exactly_its_own_durability_point(
    c_adapter: Built, tmp_path: Path
) -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is needed to observe the mutants: apt-get install strace")
    names = mutant_names()
    assert len(names) >= 14
    make(c_adapter.build_dir, "mutants")
    readme = (SOURCE / "README.md").read_text()
    root, log = tmp_path / "pgdata", tmp_path / "strace.log"
    real = {p: _syscalls(c_adapter.binary, c_adapter.binary, root, p, log) for p in PROCEDURES}
    assert all(any(line.startswith("fsync") for line in real[p]) for p in PROCEDURES)
    for name in names:
        row = next((line for line in readme.splitlines() if f"`{name}`" in line), "")
        assert any(req in row for req in README_POINTS), f"README names no requirement for {name}"
        binary = c_adapter.build_dir / f"mutant-{name}"
        for procedure in PROCEDURES:
            seen = _syscalls(binary, c_adapter.binary, root, procedure, log)
            want = real[procedure]
            if procedure not in _affected(name):
                assert seen == want, f"{name} changed {procedure}"
            elif name == "no_excl_create":
                assert len(seen) == len(want)
                changed = [(a, b) for a, b in zip(want, seen, strict=True) if a != b]
                assert changed, f"{name}: {procedure} unchanged"
                assert all(a.replace("O_EXCL", "O_TRUNC") == b for a, b in changed), changed
            else:
                missing = len(want) - len(seen)
                assert missing > 0, f"{name}: {procedure} unchanged"
                assert _is_subsequence(seen, want), f"{name}: more than fsyncs differ"
                assert (
                    sum(s.startswith("fsync") for s in want)
                    - sum(s.startswith("fsync") for s in seen)
                    == missing
                ), f"{name}: {procedure} lost calls other than fsync"


# The requirement a mutant's first failure must be charged to (README's table, first column of
# "breaks"), judged by the harness from the system calls alone (--trace-syscalls).
PRIMARY = {
    "boot_": "BOOT_04",
    "rot_no_keyfile_fsync": "ROT_04",
    "rot_no_tmpdir_fsync": "ROT_04",
    "rot_no_pgdata_fsync_after_write": "ROT_04",
    "rot_no_dir_fsync_before_rmdir": "ROT_05",
    "rot_no_pgdata_fsync_after_rmdir": "ROT_05",
    "rot_no_pgdata_fsync_after_rename": "ROT_06",
    "rec_no_dir_fsync_before_rmdir": "REC_03",
    "rec_no_pgdata_fsync_after_rmdir": "REC_03",
    "rec_no_pgdata_fsync_after_rename": "REC_04",
    "no_excl_create": "DISK_07",
}


def _charged_to(rule: str) -> Callable[[Case], bool]:
    return lambda case: case.primary == rule


@pytest.mark.req("BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "DISK_07")
def test_the_harness_catches_each_mutant_from_its_system_calls(c_adapter: Built) -> None:
    make(c_adapter.build_dir, "mutants")
    for name in mutant_names():
        want = next(v for k, v in PRIMARY.items() if name.startswith(k))
        binary = c_adapter.build_dir / f"mutant-{name}"
        config = Config([str(binary)], stages=("durability",), trace_syscalls=True)
        # As the zoo does: the run ends at the first failure charged to the mutant's rule.
        report = run_harness(config, stop_when=_charged_to(want))
        failed = [c for c in report.cases if c.verdict is Verdict.FAILED]
        assert failed, f"{name}: the harness passed it"
        primaries = {c.primary for c in failed if c.primary is not None}
        assert want in primaries, f"{name}: charged to {sorted(primaries)}, not {want}"
        rows = {r.id: r.verdict for r in report.requirement_results()}
        assert rows[want] is Verdict.FAILED, name
