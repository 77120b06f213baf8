"""Stage "safety": the lock, postmaster.pid, a hostile environment, passphrase commands that never
end, and failure atomicity (CONC_01..03, ENV_01..05, PASS_08, PASS_09, BOOT_05, ROT_07, ROT_08).

Every check runs on a fresh data directory holding a copy of a key set the IUT bootstrapped
itself, sends its request to a *spare* IUT process (a hang or a crash replaces the spare, it never
costs the run's session a restart), is bounded in time, and charges exactly the requirement it
tests. What the IUT does not claim (capabilities ``concurrency``, ``passphrase_timeout``) or the
environment cannot provide is reported unsupported with the reason, never passed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

from pgkms_conformance.harness.checks import Context
from pgkms_conformance.harness.faults import fault_cases
from pgkms_conformance.harness.hostile_fs import (
    KD,
    LOCK,
    PIDFILE,
    TMP,
    SafeWorkspace,
    changes,
    copy_tree,
    key_dirs,
    nested,
    snapshot,
)
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.oracle import Json
from pgkms_conformance.harness.procs import (
    LockHolder,
    SpareIut,
    alive,
    reaped_pid,
    tree_peak_rss_kib,
    wait_gone,
)
from pgkms_conformance.harness.safety_kit import Job, Kit, case, in_parallel
from pgkms_conformance.harness.scenarios import Secrets
from pgkms_conformance.protocol.client import AdapterFailure

LOCK_WAIT: Final = 0.5  # the lock_timeout sent while the harness holds the lock
RELEASE_AFTER: Final = 0.3  # the holder lets go this soon in the "must wait" checks
HOSTILE_BOUND: Final = 5.0  # seconds within which a hostile input must be refused
RSS_LIMIT_KIB: Final = 100 * 1024
SPARSE_SIZE: Final = 1 << 30
DEPTH: Final = 1100
COMMAND_TIMEOUT: Final = 1.0
COMMAND_GRACE: Final = 1.5  # PASS_08 allows one second after the timeout; half a second slack
# How long a killed process may take to be gone: SIGKILL acts when the target is next
# scheduled, which on a loaded machine is well after kill(); a command left running (sleep
# 1000) is still there long after either bound.
SIGTERM_BOUND: Final = 5.0
KILLED_GONE_WITHIN: Final = 3.0
# PASS_11: an output over a pipe's capacity (64 KiB on Linux), which a reader that stops at
# 1025 bytes leaves the command blocked or killed by SIGPIPE.
LONG_OUTPUT_BYTES: Final = 70_000

Check = Callable[[Kit], Iterator[Case]]


def run_safety(ctx: Context, fault_mode: str = "quick", first: str | None = None) -> Iterator[Case]:
    """The stage's checks in ``CHECKS`` order; with ``first``, the checks that judge that
    requirement (``JUDGES``) before the others (the mutant zoo ends a run at its first failure
    charged to the mutant's rule, and most of these checks wait on bounds of seconds)."""
    kit = Kit(ctx, list(ctx.session.command), SafeWorkspace(), Secrets.derive(ctx.seed))
    kit.fault_mode = fault_mode
    try:
        kit.prepare()
        for check in in_order(CHECKS, first):
            yield from check(kit)
    finally:
        kit.close()


def judges(requirement: str) -> bool:
    """Does any check of this stage charge ``requirement`` (``JUDGES``)?"""
    return any(requirement in rules for rules in JUDGES.values())


def in_order(checks: Iterable[Check], first: str | None) -> list[Check]:
    """``checks``, those that judge ``first`` moved to the front (otherwise in their order)."""
    return sorted(checks, key=lambda check: first not in JUDGES.get(check, ()))


# -- helpers --
def _params(kit: Kit, op: str, datadir: Path) -> Json:
    a, b = kit.secrets.a.hex(), kit.secrets.b.hex()
    if op == "rotate":
        return {"datadir": str(datadir), "old_passphrase": a, "new_passphrase": b}
    return {"datadir": str(datadir), "passphrase": a}


def _refusal(
    kit: Kit,
    name: str,
    reqs: tuple[str, ...],
    check: str,
    *,
    op: str,
    datadir: Path,
    code: str,
    extra: Json | None = None,
    watch: Path | None = None,
    within: float = HOSTILE_BOUND,
) -> Case:
    """``op`` on ``datadir`` must answer error ``code`` within ``within`` seconds, leaving the key
    directories (and ``watch``, a canary, if given) exactly as they were."""
    if op not in kit.caps:
        return kit.unsupported(name, reqs, check, f"the IUT does not claim {op}")
    before = key_dirs(datadir)
    canary_before = snapshot(watch) if watch is not None else {}
    t = kit.ask(op, {**_params(kit, op, datadir), **(extra or {})}, within)
    damage = changes(before, key_dirs(datadir))
    if watch is not None:
        damage += [f"canary: {c}" for c in changes(canary_before, snapshot(watch))]
    expected = f"error {code} within {within:g} s, nothing changed"
    if t.code == code and not damage:
        return case(name, Verdict.PASSED, reqs, check, op=op)
    kit.ctx.progress.failed()
    return case(
        name,
        Verdict.FAILED,
        reqs,
        check,
        op=op,
        expected=expected,
        found=t.describe(),
        detail="; ".join(damage),
    )


def _need(kit: Kit, name: str, reqs: tuple[str, ...], check: str, *caps: str) -> Case | None:
    """An unsupported case when the template or a capability is missing, else None."""
    if kit.template is None:
        return kit.unsupported(name, reqs, check, kit.not_ready)
    missing = [c for c in caps if c not in kit.caps]
    if missing:
        return kit.unsupported(name, reqs, check, f"the IUT does not claim {', '.join(missing)}")
    return None


def _with_tmp_copy(kit: Kit) -> Path:
    """A state needing recovery: a valid temporary set (a copy of the current one) beside it."""
    d = kit.fresh()
    copy_tree(d / KD, d / TMP)
    return d


def _lock_file(datadir: Path) -> Path:
    path = datadir / LOCK
    path.touch(mode=0o600)
    return path


# -- CONC_01, CONC_02: the lock --
def lock_checks(kit: Kit) -> Iterator[Case]:
    """CONC_01, CONC_02; the checks wait on the lock, so they run at once (about 1 s)."""
    check = "the harness holds pg_cryptokeys.lock from another process"
    gate = _need(kit, "lock held", ("CONC_01",), check, "concurrency")
    if gate is not None:
        yield gate
        yield kit.unsupported("lock released", ("CONC_02",), check, gate.detail)
        return
    jobs: list[Job] = []
    for op in ("rotate", "startup", "recover", "bootstrap"):
        d = kit.fresh(with_keys=op != "bootstrap")
        jobs.append(functools.partial(_held, name=f"{op} while the lock is held", op=op, d=d))
    for op in ("startup", "rotate", "recover"):
        name = f"{op} on a state needing recovery while the lock is held"
        jobs.append(functools.partial(_held, name=name, op=op, d=_with_tmp_copy(kit)))
    for op in ("rotate", "startup"):
        name = f"{op} waits for a lock released after {RELEASE_AFTER:g} s"
        jobs.append(functools.partial(_released, name=name, op=op, d=kit.fresh()))
    yield from in_parallel(kit, jobs)


def _started(kit: Kit) -> None:
    """Start the spare IUT before the lock is taken: the wait judged must be the request's,
    not the interpreter's start (a failed start is reported by the request itself)."""
    with contextlib.suppress(AdapterFailure):
        kit.spare()


def _released(kit: Kit, *, name: str, op: str, d: Path) -> list[Case]:
    check = "the harness releases pg_cryptokeys.lock soon"
    if op not in kit.caps:
        return [kit.unsupported(name, ("CONC_02",), check, f"the IUT does not claim {op}")]
    _started(kit)
    with LockHolder(_lock_file(d), hold=RELEASE_AFTER):
        t = kit.ask(op, {**_params(kit, op, d), "lock_timeout": 5.0}, 10.0)
    if t.ok:
        return [case(name, Verdict.PASSED, ("CONC_02",), check, op=op)]
    kit.ctx.progress.failed()
    return [
        case(
            name,
            Verdict.FAILED,
            ("CONC_02",),
            check,
            op=op,
            expected="success once the lock is free (lock_timeout 5 s)",
            found=t.describe(),
        )
    ]


def _held(kit: Kit, *, name: str, op: str, d: Path) -> list[Case]:
    check = "the harness holds pg_cryptokeys.lock from another process"
    out = []
    _started(kit)
    with LockHolder(_lock_file(d)):
        t0 = time.monotonic()
        refused = _refusal(
            kit,
            name,
            ("CONC_01",),
            check,
            op=op,
            datadir=d,
            code="key_directory_locked",
            extra={"lock_timeout": LOCK_WAIT},
            within=LOCK_WAIT + HOSTILE_BOUND,
        )
        waited = time.monotonic() - t0
    out.append(refused)
    if refused.verdict is Verdict.PASSED and waited < LOCK_WAIT * 0.8:
        kit.ctx.progress.failed()
        out.append(
            case(
                f"{name}: waits for the lock",
                Verdict.FAILED,
                ("CONC_02",),
                check,
                op=op,
                expected=f"key_directory_locked after waiting about {LOCK_WAIT:g} s",
                found=f"key_directory_locked after {waited:.2f} s",
            )
        )
    return out


# -- CONC_03: postmaster.pid --
def pidfile_checks(kit: Kit) -> Iterator[Case]:
    check = "PGDATA/postmaster.pid written by the harness"
    gate = _need(kit, "postmaster.pid", ("CONC_03",), check, "concurrency")
    if gate is not None:
        yield gate
        return
    live = f"{os.getpid()}\n/data\n"
    for op in ("startup", "rotate", "bootstrap"):
        d = kit.fresh(with_keys=op != "bootstrap")
        (d / PIDFILE).write_text(live)
        name = f"{op} with postmaster.pid naming a live process"
        yield _refusal(kit, name, ("CONC_03",), check, op=op, datadir=d, code="server_running")
    d = kit.fresh()
    (d / PIDFILE).write_text("not a process id\n")
    yield _refusal(
        kit,
        "startup with an unparsable postmaster.pid",
        ("CONC_03",),
        check,
        op="startup",
        datadir=d,
        code="server_running",
    )
    d = kit.fresh()
    (d / PIDFILE).write_text(f"{reaped_pid()}\n")
    name = "startup with a stale postmaster.pid (its process is gone)"
    t = kit.ask("startup", _params(kit, "startup", d), HOSTILE_BOUND)
    if t.ok:
        yield case(name, Verdict.PASSED, ("CONC_03",), check, op="startup")
    else:
        kit.ctx.progress.failed()
        yield case(
            name,
            Verdict.FAILED,
            ("CONC_03",),
            check,
            op="startup",
            expected="success: a stale postmaster.pid does not stop the procedure",
            found=t.describe(),
        )


# -- ENV_01: symbolic links --
def _canary(kit: Kit, with_keys: bool) -> Path:
    """A directory outside PGDATA that the IUT must never touch: a key set and a victim file."""
    c = kit.ws.fresh("canary")
    if with_keys and kit.template is not None:
        for entry in sorted((kit.template / KD).iterdir()):
            (c / entry.name).write_bytes(entry.read_bytes())
            os.chmod(c / entry.name, 0o600)
    (c / "victim.txt").write_bytes(b"the files of someone else\n")
    return c


def symlink_checks(kit: Kit) -> Iterator[Case]:
    check = "key directories, key files and the lock file as symbolic links to a canary"
    reqs = ("ENV_01",)
    gate = _need(kit, "symbolic links", reqs, check)
    if gate is not None:
        yield gate
        return
    for op in ("startup", "recover"):
        d, c = kit.fresh(), _canary(kit, with_keys=True)
        os.symlink(c, d / TMP)
        name = f"{op} with {TMP} a symbolic link to a canary directory"
        yield _refusal(kit, name, reqs, check, op=op, datadir=d, code="symlink_refused", watch=c)
    for op in ("startup", "recover"):
        d, c = kit.fresh(), _canary(kit, with_keys=True)
        os.rename(d / KD, d / TMP)
        os.symlink(c, d / KD)
        name = f"{op} with {KD} a symbolic link to a canary, beside a valid temporary set"
        yield _refusal(kit, name, reqs, check, op=op, datadir=d, code="symlink_refused", watch=c)
    d, c = kit.fresh(), _canary(kit, with_keys=True)
    os.unlink(d / KD / "0001")
    os.symlink(c / "0001", d / KD / "0001")
    name = "startup with a key file a symbolic link to a canary file"
    yield _refusal(kit, name, reqs, check, op="startup", datadir=d, code="symlink_refused", watch=c)
    d = kit.fresh()
    os.unlink(d / KD / "0000")
    os.symlink("/dev/zero", d / KD / "0000")
    name = "startup with a key file a symbolic link to /dev/zero"
    yield _refusal(kit, name, reqs, check, op="startup", datadir=d, code="symlink_refused")
    name = "startup with the lock file a symbolic link into a canary"
    if "concurrency" not in kit.caps:
        yield kit.unsupported(name, reqs, check, "the IUT does not claim concurrency")
        return
    d, c = kit.fresh(), _canary(kit, with_keys=False)
    os.symlink(c / "lock-created-through-a-link", d / LOCK)
    yield _refusal(kit, name, reqs, check, op="startup", datadir=d, code="symlink_refused", watch=c)


# -- ENV_02 .. ENV_05: special files, size, depth, permissions --
def special_file_checks(kit: Kit) -> Iterator[Case]:
    check = "a FIFO where a regular file belongs"
    reqs = ("ENV_02",)
    gate = _need(kit, "FIFO", reqs, check)
    if gate is not None:
        yield gate
        return
    d = kit.fresh()
    os.unlink(d / KD / "0000")
    os.mkfifo(d / KD / "0000", 0o600)
    name = "startup with a FIFO as key file 0000"
    yield _refusal(kit, name, reqs, check, op="startup", datadir=d, code="not_regular_file")
    name = "startup with a FIFO as the lock file"
    if "concurrency" not in kit.caps:
        yield kit.unsupported(name, reqs, check, "the IUT does not claim concurrency")
        return
    d = kit.fresh()
    os.mkfifo(d / LOCK, 0o600)
    yield _refusal(kit, name, reqs, check, op="startup", datadir=d, code="not_regular_file")


def size_checks(kit: Kit) -> Iterator[Case]:
    """ENV_03 on a spare IUT of its own, so that its peak RSS is this request's."""
    check = f"a {SPARSE_SIZE >> 30} GiB sparse key file"
    reqs = ("ENV_03",)
    name = "startup with a 1 GiB sparse key file 0000"
    memory = f"{name}: peak RSS under {RSS_LIMIT_KIB >> 10} MiB"
    gate = _need(kit, name, reqs, check)
    if gate is not None:
        yield gate
        yield kit.unsupported(memory, reqs, check, gate.detail)
        return
    d = kit.fresh()
    os.truncate(d / KD / "0000", SPARSE_SIZE)
    try:
        spare = SpareIut(kit.command, 10.0)
        spare.start()
    except AdapterFailure as exc:
        kit.ctx.progress.failed()
        yield case(name, Verdict.FAILED, ("ADP_01",), check, found=f"{exc.kind}: {exc.message}")
        return
    try:
        t = kit.ask("startup", _params(kit, "startup", d), HOSTILE_BOUND, spare=spare)
        peak = tree_peak_rss_kib(spare.pid) if t.answer is not None else None
    finally:
        spare.close()
    if t.code == "record_size_invalid":
        yield case(name, Verdict.PASSED, reqs, check, op="startup")
    else:
        kit.ctx.progress.failed()
        yield case(
            name,
            Verdict.FAILED,
            reqs,
            check,
            op="startup",
            expected=f"error record_size_invalid within {HOSTILE_BOUND:g} s",
            found=t.describe(),
        )
    if peak is None:
        why = "the IUT's peak RSS could not be read (/proc/<pid>/status of the IUT process tree)"
        if t.answer is None:
            why = "the IUT did not answer, so its peak RSS for the request was not read"
        yield case(memory, Verdict.NOT_APPLICABLE, reqs, check, detail=f"not judged: {why}")
    elif peak < RSS_LIMIT_KIB:
        yield case(memory, Verdict.PASSED, reqs, check, detail=f"peak RSS {peak >> 10} MiB")
    else:
        kit.ctx.progress.failed()
        yield case(
            memory,
            Verdict.FAILED,
            reqs,
            check,
            expected=f"peak RSS under {RSS_LIMIT_KIB >> 10} MiB (at most 133 bytes read)",
            found=f"peak RSS {peak >> 10} MiB",
        )


def depth_checks(kit: Kit) -> Iterator[Case]:
    check = f"{DEPTH} nested directories in {TMP} beside a valid current set"
    reqs = ("ENV_04",)
    name = f"recover removes a {DEPTH}-deep temporary tree"
    gate = _need(kit, name, reqs, check, "recover")
    if gate is not None:
        yield gate
        return
    d = kit.fresh()
    (d / TMP).mkdir(mode=0o700)
    nested(d / TMP, DEPTH)
    t = kit.ask("recover", _params(kit, "recover", d), 30.0)
    decision = t.answer.result.get("decision") if t.ok and t.answer is not None else None
    if decision == "discard_tmp" and not os.path.lexists(d / TMP):
        yield case(name, Verdict.PASSED, reqs, check, op="recover")
        return
    kit.ctx.progress.failed()
    left = "; the temporary tree is still there" if os.path.lexists(d / TMP) else ""
    yield case(
        name,
        Verdict.FAILED,
        reqs,
        check,
        op="recover",
        expected="decision discard_tmp, the whole tree removed",
        found=t.describe() + left,
    )


def permission_checks(kit: Kit) -> Iterator[Case]:
    check = "key file and key directory modes beyond the group mode"
    reqs = ("ENV_05",)
    gate = _need(kit, "permissions", reqs, check)
    if gate is not None:
        yield gate
        return
    d = kit.fresh()
    os.chmod(d / KD / "0001", 0o666)  # noqa: S103  (the hostile input under test)
    name = "startup with key file 0001 mode 0666"
    yield _refusal(kit, name, reqs, check, op="startup", datadir=d, code="permissions_too_open")
    d = kit.fresh()
    os.chmod(d / KD, 0o777)  # noqa: S103  (the hostile input under test)
    name = "startup with the key directory mode 0777"
    yield _refusal(kit, name, reqs, check, op="startup", datadir=d, code="permissions_too_open")


# -- PASS_08, PASS_09: passphrase commands that never end --
def _pid_from(path: Path, within: float) -> int | None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            text = path.read_text().strip()
            if text.isdigit():
                return int(text)
        except OSError:
            pass
        time.sleep(0.02)
    return None


def long_output_checks(kit: Kit) -> Iterator[Case]:
    """PASS_11 (and PASS_06's cut): a startup command printing 70,000 bytes is read to its end
    and its output cut to 1024 bytes; a reader that stops early makes it fail by SIGPIPE."""
    check, name = "passphrase command output", "a command printing 70,000 bytes is read to its end"
    if "run_passphrase_command" not in kit.caps:
        why = "the IUT does not claim run_passphrase_command"
        yield kit.unsupported(name, ("PASS_11",), check, why)
        return
    params = {"command": f"yes x | head -c {LONG_OUTPUT_BYTES}", "purpose": "startup"}
    t = kit.ask("run_passphrase_command", params, 10.0)
    want = (b"x\n" * 512).hex()  # the first 1024 bytes
    if t.answer is not None and t.answer.ok and t.answer.result.get("passphrase") == want:
        yield case(name, Verdict.PASSED, ("PASS_11", "PASS_06"), check, op="run_passphrase_command")
        return
    kit.ctx.progress.failed()
    cut_wrong = t.answer is not None and t.answer.ok  # read, but not cut to 1024 bytes
    yield case(
        name,
        Verdict.FAILED,
        ("PASS_06", "PASS_11") if cut_wrong else ("PASS_11", "PASS_06"),
        check,
        op="run_passphrase_command",
        expected="success: the first 1024 bytes of the output",
        found=t.describe(),
    )


def command_checks(kit: Kit) -> Iterator[Case]:
    check = "passphrase commands that never end"
    missing = [c for c in ("run_passphrase_command", "passphrase_timeout") if c not in kit.caps]
    if missing:
        why = f"the IUT does not claim {', '.join(missing)}"
        yield kit.unsupported("passphrase command timeout", ("PASS_08",), check, why)
        yield kit.unsupported("SIGTERM ends the command", ("PASS_09",), check, why)
        return
    d = kit.ws.fresh("cmd")
    pid_file, daemon_file = d / "command.pid", d / "daemon.pid"
    passphrase = "x" * 72
    commands = (
        ("sleep 1000", None, "run_passphrase_command 'sleep 1000', timeout 1 s"),
        (
            f"echo $$ > {pid_file}; exec sleep 1000",
            pid_file,
            "a command recording its pid is killed on timeout",
        ),
        (
            f"(sh -c 'echo $$ > {daemon_file}; exec sleep 1000' &); printf %s {passphrase}",
            daemon_file,
            "a daemon holding stdout is killed on timeout",
        ),
    )
    jobs: list[Job] = [
        functools.partial(_command_case, command=command, recorded=recorded, named=named)
        for command, recorded, named in commands
    ]
    jobs.append(functools.partial(_sigterm_case, pid_file=d / "sigterm.pid"))
    yield from in_parallel(kit, jobs)


def _command_case(kit: Kit, *, command: str, recorded: Path | None, named: str) -> list[Case]:
    check = "passphrase commands that never end"
    bound = COMMAND_TIMEOUT + COMMAND_GRACE
    params = {"command": command, "purpose": "startup", "timeout": COMMAND_TIMEOUT}
    t = kit.ask("run_passphrase_command", params, bound + 3.0)
    problems = []
    if t.code != "passphrase_command_timeout" or t.seconds > bound:
        problems.append(t.describe())
    if recorded is not None:
        pid = _pid_from(recorded, 0.5)
        if pid is None:
            problems.append("the command never recorded its pid")
        elif not wait_gone(pid, KILLED_GONE_WITHIN):
            problems.append(f"process {pid} of the command is still alive")
    kit.drop_spare()  # kills whatever the IUT left behind, whatever the verdict
    if not problems:
        return [case(named, Verdict.PASSED, ("PASS_08",), check, op="run_passphrase_command")]
    kit.ctx.progress.failed()
    return [
        case(
            named,
            Verdict.FAILED,
            ("PASS_08",),
            check,
            op="run_passphrase_command",
            expected=f"error passphrase_command_timeout within {bound:g} s, no process left",
            found="; ".join(problems),
        )
    ]


def _sigterm_case(kit: Kit, *, pid_file: Path) -> list[Case]:
    return [_sigterm(kit, pid_file)]


def _sigterm(kit: Kit, pid_file: Path) -> Case:
    check = "passphrase commands that never end"
    name = "SIGTERM to the IUT while a command runs ends the command's process group"
    try:
        spare = SpareIut(kit.command, 10.0)
        spare.start()
    except AdapterFailure as exc:
        kit.ctx.progress.failed()
        return case(name, Verdict.FAILED, ("ADP_01",), check, found=f"{exc.kind}: {exc.message}")
    params = {
        "command": f"echo $$ > {pid_file}; exec sleep 1000",
        "purpose": "startup",
        "timeout": 30.0,
    }
    caller = threading.Thread(target=_swallow, args=(kit, spare, params), daemon=True)
    try:
        caller.start()
        pid = _pid_from(pid_file, 5.0)
        os.kill(spare.pid, signal.SIGTERM)
        command_gone = pid is not None and wait_gone(pid, SIGTERM_BOUND)
        iut_gone = wait_gone(spare.pid, SIGTERM_BOUND) or not alive(spare.pid)
    finally:
        spare.close()
        caller.join(timeout=5.0)
    if pid is None:
        kit.ctx.progress.failed()
        return case(name, Verdict.FAILED, ("PASS_09",), check, found="the command never started")
    if command_gone and iut_gone:  # ADP_06 too: the adapter itself ended on SIGTERM
        covered = ("PASS_09", "ADP_06")
        return case(name, Verdict.PASSED, covered, check, op="run_passphrase_command")
    kit.ctx.progress.failed()
    found = [] if command_gone else [f"the command (process {pid}) still ran after 2 s"]
    found += [] if iut_gone else ["the IUT did not exit on SIGTERM"]
    reqs = ("PASS_09",) if not command_gone else ("ADP_06",)
    return case(
        name,
        Verdict.FAILED,
        reqs,
        check,
        op="run_passphrase_command",
        expected=f"the command's process group gone within {SIGTERM_BOUND:g} s, the IUT exited",
        found="; ".join(found),
    )


def _swallow(kit: Kit, spare: SpareIut, params: Json) -> None:
    """The request the SIGTERM interrupts: its (missing) answer is not what is judged."""
    kit.ask("run_passphrase_command", params, 30.0, spare=spare)


# -- BOOT_05 without fault injection --
def bootstrap_retry_checks(kit: Kit) -> Iterator[Case]:
    check = "bootstrap beside a lone temporary directory"
    gate = _need(kit, "bootstrap retry", ("BOOT_05",), check)
    if gate is not None:
        yield gate
        return
    d = kit.fresh(with_keys=False)
    (d / TMP).mkdir(mode=0o700)
    (d / TMP / "0000").touch(mode=0o600)
    name = "bootstrap after an interrupted one (a lone tmp holding a 0-byte 0000)"
    t = kit.ask("bootstrap", _params(kit, "bootstrap", d), 30.0)
    opened = kit.ask("startup", _params(kit, "startup", d), 30.0) if t.ok else None
    if t.ok and opened is not None and opened.ok and not os.path.lexists(d / TMP):
        yield case(name, Verdict.PASSED, ("BOOT_05",), check, op="bootstrap")
    else:
        kit.ctx.progress.failed()
        found = t.describe() if not t.ok else f"then {opened.describe() if opened else '?'}"
        yield case(
            name,
            Verdict.FAILED,
            ("BOOT_05",),
            check,
            op="bootstrap",
            expected="success (the leftover removed), a key set that opens",
            found=found,
        )
    assert kit.template is not None
    d = kit.fresh(with_keys=False)
    copy_tree(kit.template / KD, d / TMP)
    name = "bootstrap beside a lone complete temporary set"
    yield _refusal(
        kit, name, ("BOOT_01",), check, op="bootstrap", datadir=d, code="keys_already_exist"
    )


def faults(kit: Kit) -> Iterator[Case]:
    yield from fault_cases(kit, kit.fault_mode)


CHECKS: Final[tuple[Check, ...]] = (
    lock_checks,
    pidfile_checks,
    symlink_checks,
    special_file_checks,
    size_checks,
    depth_checks,
    permission_checks,
    long_output_checks,
    command_checks,
    bootstrap_retry_checks,
    faults,
)
# The requirements each check charges its cases to (a test holds this to what they yield).
JUDGES: Final[dict[Check, frozenset[str]]] = {
    lock_checks: frozenset({"CONC_01", "CONC_02"}),
    pidfile_checks: frozenset({"CONC_03"}),
    symlink_checks: frozenset({"ENV_01"}),
    special_file_checks: frozenset({"ENV_02"}),
    size_checks: frozenset({"ENV_03"}),
    depth_checks: frozenset({"ENV_04"}),
    permission_checks: frozenset({"ENV_05"}),
    long_output_checks: frozenset({"PASS_11"}),
    command_checks: frozenset({"PASS_08", "PASS_09", "ADP_06"}),
    bootstrap_retry_checks: frozenset({"BOOT_05", "BOOT_01"}),
    faults: frozenset({"ROT_07", "ROT_08", "BOOT_05", "CONC_01"}),  # and the paused rotation
}
