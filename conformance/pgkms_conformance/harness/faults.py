"""Failure atomicity by syscall fault injection (ROT_07, ROT_08, BOOT_05, DISK_07).

A separate adapter process of the IUT runs under ``strace -e inject=<syscall>:error=EIO:when=K``
for K = 1, 2, ... per syscall family (fsync, unlink, rmdir, rename, mkdir): the K-th such call
fails with EIO. strace's own log (``-y`` names each descriptor's path) says which call failed, so
a K that fell on the interpreter's start-up instead of the procedure judges nothing, and a K past
the procedure's last call ends the family. Then a normal request judges what is left:

- rotation, failed before its point of no return (the first removal in ``pg_cryptokeys``): no
  ``pg_cryptokeys_tmp`` may remain and the old passphrase opens the original keys (ROT_07);
- failed at or after it: the answer is ``rotation_incomplete`` and the new passphrase opens the
  original keys (ROT_08);
- bootstrap, failed: nothing blocks a retry and a retry succeeds (BOOT_05);
- a success answer although an fsync failed: DISK_07.

Without strace, or where ptrace is not permitted, every such case is unsupported with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from pgkms_conformance.harness.hostile_fs import KD, TMP, Snapshot, key_dirs
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.procs import SpareIut
from pgkms_conformance.harness.safety_kit import Kit, Timed, case, opens_original
from pgkms_conformance.protocol.client import AdapterFailure

FAMILIES: Final = {
    "fsync": ("fsync", "fdatasync"),
    "unlink": ("unlink", "unlinkat"),
    "rmdir": ("rmdir",),
    "rename": ("rename", "renameat", "renameat2"),
    "mkdir": ("mkdir", "mkdirat"),
}
TRACED: Final = ",".join(s for group in FAMILIES.values() for s in group)
MAX_WHEN: Final = 12  # injections per family and procedure, at most
TIME_BUDGET: Final = 120.0  # seconds for the whole fault-injection part
CHECK: Final = "syscall fault injection (strace -e inject=...:error=EIO)"
_REMOVAL_OF_CURRENT = re.compile(r"^\d*\s*(unlink|unlinkat|rmdir)\(.*pg_cryptokeys(?!_tmp)[/>\"]")
_RENAME_INTO_PLACE = re.compile(r"^\d*\s*rename(at2?)?\(.*pg_cryptokeys_tmp")


@cache
def strace_unavailable() -> str | None:
    """None when strace can inject errors here, else why not (probed once per process)."""
    if shutil.which("strace") is None:
        return "strace is not installed"
    probe = "\n".join(
        (
            "import os, sys",
            "try:\n os.fsync(1)",
            "except OSError as e:\n sys.exit(7 - 4 * (e.errno != 5))",
        )
    )
    try:
        done = subprocess.run(
            [
                "strace",
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=fsync",
                "-e",
                "inject=fsync:error=EIO:when=1",
                sys.executable,
                "-c",
                probe,
            ],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"strace could not run: {exc}"
    if done.returncode != 7:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return (
            f"ptrace not permitted or injection unsupported: {err[-1] if err else done.returncode}"
        )
    return None


@dataclass(frozen=True)
class Injection:
    family: str
    when: int
    line: str  # strace's line of the failed call, paths shortened to the data directory
    past_point_of_no_return: bool


def _wrapper(log: Path, family: str, when: int) -> list[str]:
    syscalls = ",".join(FAMILIES[family])
    return [
        "strace",
        "-f",
        "-qq",
        "-y",
        "-o",
        str(log),
        "-e",
        "signal=none",
        "-e",
        f"trace={TRACED}",
        "-e",
        f"inject={syscalls}:error=EIO:when={when}",
    ]


def _injection(log: Path, datadir: Path, family: str, when: int, op: str) -> Injection | None:
    """The first injected call on the data directory; None if none was injected there."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    point_seen = False
    for line in lines:
        boundary = _REMOVAL_OF_CURRENT if op == "rotate" else _RENAME_INTO_PLACE
        if str(datadir) in line and boundary.search(line):
            point_seen = True
        if "(INJECTED)" in line and (str(datadir) in line or KD in line):
            short = line.split(" ", 1)[-1].replace(str(datadir), "PGDATA")
            return Injection(family, when, short, point_seen)
    return None


def _injected_anywhere(log: Path) -> bool:
    try:
        return "(INJECTED)" in log.read_text(errors="replace")
    except OSError:
        return False


def fault_cases(kit: Kit) -> Iterator[Case]:
    reqs_all = ("ROT_07", "ROT_08", "BOOT_05")
    why = strace_unavailable()
    if why is not None:
        for req in reqs_all:
            yield kit.unsupported(
                f"{req} by fault injection",
                (req,),
                CHECK,
                f"syscall fault injection unavailable: {why}",
            )
        return
    if kit.template is None:
        for req in reqs_all:
            yield kit.unsupported(f"{req} by fault injection", (req,), CHECK, kit.not_ready)
        return
    deadline = time.monotonic() + TIME_BUDGET
    for op in ("rotate", "bootstrap"):
        if op not in kit.caps:
            reqs = ("ROT_07", "ROT_08") if op == "rotate" else ("BOOT_05",)
            yield kit.unsupported(
                f"{op} by fault injection", reqs, CHECK, f"the IUT does not claim {op}"
            )
            continue
        for family in FAMILIES:
            for when in range(1, MAX_WHEN + 1):
                if time.monotonic() > deadline:
                    yield kit.unsupported(
                        f"{op}, {family} #{when} and later",
                        ("ROT_07",),
                        CHECK,
                        f"the fault-injection time budget ({TIME_BUDGET:g} s) ran out",
                    )
                    return
                outcome = _one(kit, op, family, when)
                if outcome is None:
                    break
                if isinstance(outcome, Case):
                    yield outcome


def _one(kit: Kit, op: str, family: str, when: int) -> Case | bool | None:
    """One injected run: a Case; True when the injection missed the procedure (judge nothing);
    None when no call was injected at all (the family is exhausted)."""
    d = kit.fresh(with_keys=op == "rotate")
    log = kit.ws.root / f"strace-{op}-{family}-{when}.log"
    before = key_dirs(d)
    params = {"datadir": str(d)}
    if op == "rotate":
        params |= {"old_passphrase": kit.secrets.a.hex(), "new_passphrase": kit.secrets.b.hex()}
    else:
        params |= {"passphrase": kit.secrets.a.hex()}
    try:
        spare = SpareIut(kit.command, 20.0, wrapper=_wrapper(log, family, when))
        spare.start()
    except AdapterFailure:
        return True  # the injection broke the IUT's own start (not a procedure): judge nothing
    try:
        t = kit.ask(op, params, 20.0, spare=spare)
    finally:
        spare.close()
    hit = _injection(log, d, family, when, op)
    if hit is None:
        return True if _injected_anywhere(log) else None
    run = Injected(kit, f"{op} with {family} call #{when} failing (EIO)", d, before, t, hit)
    return _judge_rotation(run) if op == "rotate" else _judge_bootstrap(run)


@dataclass(frozen=True)
class Injected:
    """One injected run, to be judged."""

    kit: Kit
    name: str
    datadir: Path
    before: Snapshot
    answer: Timed
    hit: Injection

    @property
    def source(self) -> dict[str, str]:
        return {"injection": f"{self.hit.family} #{self.hit.when}: {self.hit.line}"}

    def passed(self, req: str) -> Case:
        return case(self.name, Verdict.PASSED, (req,), CHECK, **self.source)

    def failed(self, req: str, expected: str, found: str) -> Case:
        self.kit.ctx.progress.failed()
        return case(
            self.name, Verdict.FAILED, (req,), CHECK, expected=expected, found=found, **self.source
        )


def _judge_rotation(run: Injected) -> Case:
    kit, d, t, hit = run.kit, run.datadir, run.answer, run.hit
    if t.ok:
        if hit.family == "fsync":
            return run.failed(
                "DISK_07",
                "an error: a durability point failed",
                f"{t.describe()} although an fsync failed",
            )
        opened, said = opens_original(kit, d, kit.secrets.b)
        req = "ROT_08" if hit.past_point_of_no_return else "ROT_07"
        if opened and not (d / TMP).exists():
            return run.passed(req)
        return run.failed(req, "success only with the rotation complete", said)
    if hit.past_point_of_no_return:
        if t.code != "rotation_incomplete":
            return run.failed(
                "ROT_08", "error rotation_incomplete (past the point of no return)", t.describe()
            )
        opened, said = opens_original(kit, d, kit.secrets.b)
        if opened:
            return run.passed("ROT_08")
        return run.failed("ROT_08", "the new passphrase opens the original keys", said)
    old_set = {k: v for k, v in run.before.items() if k.startswith(KD + "/") or k == KD}
    kept = {k: v for k, v in key_dirs(d).items() if k.startswith(KD + "/") or k == KD} == old_set
    if (d / TMP).exists() or not kept:
        what = f"{TMP} left behind" if (d / TMP).exists() else f"{KD} changed"
        return run.failed(
            "ROT_07",
            f"{TMP} removed, {KD} as before (failure before the point of no return)",
            f"{t.describe()}; {what}",
        )
    opened, said = opens_original(kit, d, kit.secrets.a)
    if not opened:
        return run.failed("ROT_07", "the old passphrase opens the original keys", said)
    if t.code == "rotation_incomplete":
        return run.failed(
            "ROT_08",
            "the failure's own code: the old passphrase still opens the keys",
            t.describe(),
        )
    return run.passed("ROT_07")


def _judge_bootstrap(run: Injected) -> Case:
    kit, d, t, hit = run.kit, run.datadir, run.answer, run.hit
    params = {"datadir": str(d), "passphrase": kit.secrets.a.hex()}
    if t.ok:
        if hit.family == "fsync":
            return run.failed(
                "DISK_07",
                "an error: a durability point failed",
                f"{t.describe()} although an fsync failed",
            )
        opened = kit.ask("startup", params, 30.0)
        if opened.ok:
            return run.passed("BOOT_05")
        return run.failed("BOOT_05", "a key set that opens", opened.describe())
    if (d / TMP).exists():
        return run.failed(
            "BOOT_05",
            f"{TMP} removed before the failure is reported",
            f"{t.describe()}; {TMP} left behind",
        )
    if (d / KD).exists():
        opened = kit.ask("startup", params, 30.0)
        if opened.ok:  # the failure came after the rename: the keys exist, a retry is not due
            return run.passed("BOOT_05")
        return run.failed(
            "BOOT_05",
            f"no partial {KD} after a failed bootstrap",
            f"{t.describe()}; {KD} left that does not open: {opened.describe()}",
        )
    retry = kit.ask("bootstrap", params, 30.0)
    if retry.ok:
        return run.passed("BOOT_05")
    return run.failed(
        "BOOT_05", "a retried bootstrap succeeds", f"{t.describe()}; the retry: {retry.describe()}"
    )
