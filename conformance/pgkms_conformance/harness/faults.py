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
import threading
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
MAX_WHEN: Final = 12  # injections per family and procedure, at most (mode full)
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
class Target:
    """One call to make fail: the ``when``-th ``syscall`` of the traced process."""

    family: str
    syscall: str
    when: int
    past_point_of_no_return: bool


@dataclass(frozen=True)
class Injection:
    family: str
    when: int
    line: str  # strace's line of the failed call, paths shortened to the data directory
    past_point_of_no_return: bool


def _wrapper(log: Path, target: Target | None) -> list[str]:
    inject = (
        [] if target is None else ["-e", f"inject={target.syscall}:error=EIO:when={target.when}"]
    )
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
        *inject,
    ]


_CALL = re.compile(r"^(\d+)\s+([a-z0-9_]+)\(")
_FAMILY_OF: Final = {name: family for family, names in FAMILIES.items() for name in names}


def _calls(log: Path, datadir: Path, op: str) -> Iterator[tuple[Target, str]]:
    """Every traced call on the data directory, as the Target that would make it fail (strace
    counts ``when`` per syscall and per traced process), with its log line."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return
    counts: dict[tuple[str, str], int] = {}
    past = False
    boundary = _REMOVAL_OF_CURRENT if op == "rotate" else _RENAME_INTO_PLACE
    for line in lines:
        m = _CALL.match(line)
        if m is None or m.group(2) not in _FAMILY_OF:
            continue
        key = (m.group(1), m.group(2))
        counts[key] = counts.get(key, 0) + 1
        on_datadir = str(datadir) in line
        if on_datadir and boundary.search(line):
            past = True
        if on_datadir:
            short = line.split(" ", 1)[-1].replace(str(datadir), "PGDATA")
            yield Target(_FAMILY_OF[m.group(2)], m.group(2), counts[key], past), short


def _injection(log: Path, datadir: Path, op: str) -> Injection | None:
    """The injected call on the data directory; None if the injection fell elsewhere."""
    for target, line in _calls(log, datadir, op):
        if "(INJECTED)" in line:
            return Injection(target.family, target.when, line, target.past_point_of_no_return)
    return None


def _params(kit: Kit, op: str, d: Path) -> dict[str, str]:
    if op == "rotate":
        old, new = kit.secrets.a.hex(), kit.secrets.b.hex()
        return {"datadir": str(d), "old_passphrase": old, "new_passphrase": new}
    return {"datadir": str(d), "passphrase": kit.secrets.a.hex()}


def plan(kit: Kit, op: str, mode: str) -> list[Target] | str:
    """The calls to make fail, from one traced run without injection (or why there are none).

    ``quick``: the first fsync before the point of no return (for bootstrap: its rename), the
    first call at it and the first fsync after it; ``full``: every call of every family on the
    data directory, up to MAX_WHEN per family."""
    d = kit.fresh(with_keys=op == "rotate")
    log = kit.ws.root / f"strace-{op}-plan.log"
    try:
        spare = SpareIut(kit.command, 20.0, wrapper=_wrapper(log, None))
        spare.start()
    except AdapterFailure as exc:
        return f"the IUT did not start under strace: {exc.message}"
    try:
        t = kit.ask(op, _params(kit, op, d), 20.0, spare=spare)
    finally:
        spare.close()
    if not t.ok:
        return f"{op} failed under strace without any injection: {t.describe()}"
    calls = [target for target, _ in _calls(log, d, op)]
    if mode == "full":
        per_family: dict[str, int] = {}
        chosen = []
        for target in calls:
            per_family[target.family] = per_family.get(target.family, 0) + 1
            if per_family[target.family] <= MAX_WHEN:
                chosen.append(target)
        return chosen
    before = [c for c in calls if not c.past_point_of_no_return]
    past = [c for c in calls if c.past_point_of_no_return]
    picks = (
        next((c for c in before if c.family == "fsync"), None),
        past[0] if past else None,
        next((c for c in past if c.family == "fsync"), None),
    )
    return list(dict.fromkeys(c for c in picks if c is not None))


def fault_cases(kit: Kit, mode: str = "quick") -> Iterator[Case]:
    reqs_all = ("ROT_07", "ROT_08", "BOOT_05")
    why = strace_unavailable() if mode != "off" else "turned off (--fault-injection off)"
    if why is not None:
        yield kit.unsupported(PAUSED, ("CONC_01",), CHECK, f"syscall delay unavailable: {why}")
        for req in reqs_all:
            yield kit.unsupported(
                f"{req} by fault injection",
                (req,),
                CHECK,
                f"syscall fault injection unavailable: {why}",
            )
        return
    if kit.template is None:
        yield kit.unsupported(PAUSED, ("CONC_01",), CHECK, kit.not_ready)
        for req in reqs_all:
            yield kit.unsupported(f"{req} by fault injection", (req,), CHECK, kit.not_ready)
        return
    yield paused_rotation(kit)
    deadline = time.monotonic() + TIME_BUDGET
    for op in ("rotate", "bootstrap"):
        reqs = ("ROT_07", "ROT_08") if op == "rotate" else ("BOOT_05",)
        name = f"{op} by fault injection"
        targets = plan(kit, op, mode) if op in kit.caps else f"the IUT does not claim {op}"
        if isinstance(targets, str):
            yield kit.unsupported(name, reqs, CHECK, targets)
            continue
        for target in targets:
            if time.monotonic() > deadline:
                why = f"the fault-injection time budget ({TIME_BUDGET:g} s) ran out"
                yield kit.unsupported(f"{name}: the remaining calls", reqs, CHECK, why)
                return
            judged = _one(kit, op, target)
            if judged is not None:
                yield judged


PAUSED: Final = "startup during a rotation paused before its first removal"
PAUSE: Final = 1.5  # seconds the rotation's first unlink is delayed
STARTUP_AFTER: Final = 0.5  # seconds after the rotation was sent


def paused_rotation(kit: Kit) -> Case:
    """Issue 10's reproduction (CONC_01): a rotation paused by strace before its first unlink
    (both key sets complete on disk) while a startup under the OLD passphrase runs. Unlocked,
    the startup's recovery discards the new set and the rotation then removes the old one."""
    if "concurrency" not in kit.caps or "rotate" not in kit.caps:
        return kit.unsupported(PAUSED, ("CONC_01",), CHECK, "the IUT does not claim concurrency")
    d = kit.fresh()
    delay = int(PAUSE * 1_000_000)
    wrapper = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=unlink,unlinkat",
        "-e",
        f"inject=unlink,unlinkat:delay_enter={delay}:when=1",
    ]
    try:
        rotating = SpareIut(kit.command, 20.0, wrapper=wrapper)
        rotating.start()
    except AdapterFailure as exc:
        return kit.unsupported(PAUSED, ("CONC_01",), CHECK, f"no IUT under strace: {exc.message}")
    answers: dict[str, Timed] = {}

    def rotate() -> None:
        answers["rotate"] = kit.ask("rotate", _params(kit, "rotate", d), 20.0, spare=rotating)

    worker = threading.Thread(target=rotate, daemon=True)
    try:
        worker.start()
        time.sleep(STARTUP_AFTER)
        startup = {**_params(kit, "startup", d), "lock_timeout": 10.0}
        answers["startup"] = kit.ask("startup", startup, 20.0)
        worker.join(timeout=20.0)
    finally:
        rotating.close()
    opened, said = opens_original(kit, d, kit.secrets.b)
    rot, start = answers.get("rotate"), answers["startup"]
    problems = [] if rot is not None and rot.ok else [f"rotate: {rot.describe() if rot else '?'}"]
    if not (start.ok or start.code == "wrong_passphrase"):
        problems.append(f"startup under the old passphrase: {start.describe()}")
    if not opened:
        problems.append(f"afterwards, under the new passphrase: {said}")
    if not problems:
        return case(PAUSED, Verdict.PASSED, ("CONC_01",), CHECK, op="startup")
    kit.ctx.progress.failed()
    # Refused at once although the rotation ends well within its lock_timeout: the bounded
    # wait is what failed (CONC_02); anything else broke the exclusion itself.
    waited_too_little = opened and start.code == "key_directory_locked"
    return case(
        PAUSED,
        Verdict.FAILED,
        ("CONC_02",) if waited_too_little else ("CONC_01",),
        CHECK,
        op="startup",
        expected="the startup waits for the rotation; the new passphrase opens the original keys",
        found="; ".join(problems),
    )


def _one(kit: Kit, op: str, target: Target) -> Case | None:
    """One injected run, judged; None when the injection missed the procedure."""
    d = kit.fresh(with_keys=op == "rotate")
    log = kit.ws.root / f"strace-{op}-{target.syscall}-{target.when}.log"
    before = key_dirs(d)
    try:
        spare = SpareIut(kit.command, 20.0, wrapper=_wrapper(log, target))
        spare.start()
    except AdapterFailure:
        return None  # the injection broke the IUT's own start, not the procedure
    try:
        t = kit.ask(op, _params(kit, op, d), 20.0, spare=spare)
    finally:
        spare.close()
    hit = _injection(log, d, op)
    if hit is None:
        return None
    family, when = target.family, target.when
    name = f"{op} with {target.syscall} call #{when} ({family}) failing with EIO"
    run = Injected(kit, name, d, before, t, hit)
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
        return {"injection": self.hit.line}

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
