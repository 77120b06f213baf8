"""Stage 5: durability, judged on the IUT's own filesystem trace (capability ``fs_trace``).

Three checks, all on what the IUT reports it did (ADP_05), all language-neutral:

- *Points*: the traces of bootstrap, rotation, each recovery decision and the upgrade must keep
  every durability point of their procedures (``crash/points.py``, drawn from the procedures
  of ``crash/machine.py`` that the crash explorer checks the reference against and the spec
  draws its tables from): BOOT_04, ROT_04..ROT_06, REC_03/REC_04, UPG_01, DISK_07. Each point
  is judged on its own and is a case of its own: a missing one fails its own requirement (the
  others cited), with the operation left uncovered, where the point fell due and a short
  excerpt of the trace. Operations that break no point, extra fsyncs first, are allowed.
- *Crash exploration*: the crash explorer's engine (``crash/explorer.py``), given the IUT's
  rotation trace as its trace source and the IUT's startup as its startup runner. The trace is
  replayed on the simulated filesystem; every crash image it allows is written to a fresh
  directory and the IUT's startup runs on it with the old and with the new passphrase.
  Invariants I1..I4 (CRASH_07) are the explorer's own ``check``. A crash during the IUT's
  startup is explored by replaying the startup's own trace (I3, REC_06), two crashes deep by
  default (a crash in the recovery that follows a crash in recovery); images are deduplicated,
  so the deeper level asks the IUT only about images no shallower crash produced.
- *Upgrade*: the new cluster's entries of the IUT's ``upgrade_keys`` trace must keep the points
  of rotation's swap (``SPEC_UPGRADE``), charged to UPG_01 with ROT_04..ROT_06 cited, since the
  copy is crash-safe only if it is that swap; the crash explorer proves the swap safe for
  pg_upgrade too.

Without ``fs_trace`` every requirement of this stage is reported unsupported: the adapter's
answers and files cannot show a missing fsync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from pgkms_conformance.crash.explorer import (
    DEFAULT_DEPTH,
    SPEC,
    Explorer,
    Scenario,
    StartupRun,
    StartupRunner,
    Traced,
    Violation,
)
from pgkms_conformance.crash.points import POINTS, Point, judge
from pgkms_conformance.crash.simfs import ROOT, SimFileSystem
from pgkms_conformance.harness.checks import Context
from pgkms_conformance.harness.fstrace import BadTrace, TraceOp, faithful, parse_trace, replay
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.oracle import Answer, Json
from pgkms_conformance.harness.scenarios import Secrets, Workspace, as_tmp, key_set, rotated
from pgkms_conformance.harness.session import RunAborted
from pgkms_conformance.harness.syscalls import NotExclusive, NotJudged
from pgkms_conformance.image import Image, Listing, freeze, snapshot, thaw
from pgkms_conformance.protocol.client import AdapterFailure

STAGE: Final = "durability"
# Distinct crash images explored per rotation; the reference's rotation gives 39. An IUT whose
# trace leaves far more (e.g. no directory fsync at all) is explored up to the cap, and the cap
# is reported.
STATE_CAP: Final = 400
# Operations shown before and after the one a breached point was due before.
EXCERPT_BEFORE: Final = 2
EXCERPT_AFTER: Final = 1

# What breaking an invariant says about the IUT (the crash model's CRASH_07, and the rule that
# the invariant restates).
INVARIANT_REQS: Final = {
    "I1": ("CRASH_07", "REC_05"),
    "I2": ("CRASH_07", "REC_03", "REC_04"),
    "I3": ("CRASH_07", "REC_06"),
    "I4": ("CRASH_07", "START_04"),
}
UNSUPPORTED_REQS: Final = (
    "DISK_07",
    "BOOT_04",
    "ROT_04",
    "ROT_05",
    "ROT_06",
    "REC_03",
    "REC_04",
    "REC_06",
    "CRASH_07",
    "ADP_05",
)


@dataclass
class Figures:
    """What the stage measured, for the report's source fields."""

    rotation_ops: int = 0
    states: int = 0
    recovery_states: int = 0
    depths: list[tuple[int, int]] = field(default_factory=list)  # Report.depths
    startups: int = 0
    capped: bool = False


def _case(name: str, verdict: Verdict, reqs: tuple[str, ...], **extra: object) -> Case:
    expected, found, detail = (str(extra.pop(k, "")) for k in ("expected", "found", "detail"))
    return Case(STAGE, name, verdict, reqs, dict(extra), expected, found, detail)


def _traced(ctx: Context, op: str, params: Json) -> tuple[Answer, list[TraceOp]]:
    """The answer and the trace of one request: from its system calls under --trace-syscalls,
    else from the IUT's own fs_trace (ADP_05)."""
    if ctx.syscalls is not None:
        ctx.progress.tick()
        return ctx.syscalls.ask(op, params)
    answer = ctx.ask(op, {**params, "trace_fs": True})
    if not answer.ok:
        return answer, []
    return answer, parse_trace(answer.result.get("fs_trace"))


def _excerpt(ops: Sequence[TraceOp], around: Sequence[int]) -> str:
    """The operations near each index of ``around`` (0-based; ``len(ops)`` stands for the
    answer), numbered as the report numbers them, the ones in ``around`` marked with ``>``."""
    shown: set[int] = set()
    for i in around:
        shown.update(range(max(i - EXCERPT_BEFORE, 0), min(i + EXCERPT_AFTER, len(ops) - 1) + 1))
    parts: list[str] = []
    for i in sorted(shown):
        if (parts and i - 1 not in shown) or (not parts and i > 0):
            parts.append("...")
        parts.append(f"{'>' if i in around else ''}{i + 1} {ops[i]}")
    if len(ops) in around:
        parts.append(">the answer")
    elif not shown or max(shown) < len(ops) - 1:
        parts.append("...")
    return "; ".join(parts)


def _charged(point: Point, points: Sequence[Point], ops: Sequence[TraceOp]) -> tuple[str, ...]:
    """The requirements a breach of ``point`` names, the primary one first.

    A trace that fsyncs no directory at all, where its procedure fsyncs directories in several
    steps, breaks DISK_07's rule as such rather than one step of the procedure: its directory
    points are then charged to DISK_07, the procedure's own requirement cited.
    """
    directory_steps = {p.step for p in points if p.effect.durable == "entry"}
    if (
        point.effect.durable == "entry"
        and len(directory_steps) > 1
        and not any(op.kind == "fsync_dir" for op in ops)
    ):
        return ("DISK_07", point.requirement, *(r for r in point.also if r != "DISK_07"))
    return (point.requirement, *point.also)


def point_cases(label: str, ops: list[TraceOp], points: Sequence[Point]) -> Iterator[Case]:
    """One case per durability point of the procedure, each judged on its own."""
    for number, (point, found) in enumerate(zip(points, judge(ROOT, ops, points), strict=True), 1):
        name = f"{label} point {number}: {point.text}"
        source = {
            "check": "durability point of the trace",
            "procedure": label,
            "point": number,
        }
        if found is None:
            yield _case(name, Verdict.PASSED, (point.requirement, *point.also), **source)
            continue
        due = "the answer" if found.index == len(ops) else f"operation {found.index + 1}"
        if found.index < len(ops):
            due += f" ({ops[found.index]})"
        around = [found.index] if found.culprit is None else [found.culprit, found.index]
        yield _case(
            name,
            Verdict.FAILED,
            _charged(point, points, ops),
            **source,
            **{"due before": found.index + 1 if found.index < len(ops) else "the answer"},
            **({} if found.culprit is None else {"operation": found.culprit + 1}),
            expected=point.text,
            found=f"{found.reason}, before {due}",
            detail="trace: " + _excerpt(ops, around),
        )


# -- the crash explorer, with the IUT's trace and startup ---------------------------------------
def replayed(ops: Sequence[TraceOp], image: Image, contents: dict[int, bytes]) -> Traced:
    """An IUT's trace as the crash engine's trace source: replayed on the simulated filesystem
    from ``image``, the power failing after any prefix of it."""

    def crashed(point: int) -> SimFileSystem:
        return replay(ops, image, contents, crash_after=point)

    return Traced([op.as_op() for op in ops], crashed)


def iut_startup(ctx: Context, ws: Workspace, figures: Figures) -> StartupRunner:
    """The crash engine's startup runner: the IUT's startup, on a fresh directory holding the
    image, its trace checked to account for the directory it left (ADP_05)."""

    def run(image: Image, passphrase: bytes) -> StartupRun:
        directory = ws.fresh(thaw(image))
        params = {"datadir": str(directory), "passphrase": passphrase.hex()}
        answer, ops = _traced(ctx, "startup", params)
        figures.startups += 1
        after = snapshot(directory)
        contents = faithful(ops, image, after) if answer.ok else {}
        keys = (
            tuple(bytes.fromhex(str(k)) for k in answer.result.get("keys", []))
            if answer.ok
            else None
        )
        error = None if answer.ok else answer.code
        return StartupRun(error, keys, freeze(after), replayed(ops, image, contents))

    return run


def _describe(v: Violation, ops: list[TraceOp]) -> str:
    where = (
        "before the rotation's first operation"
        if v.crash_point == 0
        else f"after operation {v.crash_point} of the rotation ({ops[v.crash_point - 1]})"
    )
    lost = "; ".join(s.replace(ROOT + "/", "") for s in v.state.lost) or "nothing"
    text = f"power lost {where}; the crash lost: {lost}"
    if v.state.torn:
        text += "; torn: " + "; ".join(v.state.torn)
    text += f"; startup with the {v.passphrase} passphrase"
    return text + (f"; {v.detail}" if v.detail else "")


def explore_rotation(
    ctx: Context, ws: Workspace, figures: Figures, depth: int = DEFAULT_DEPTH
) -> Iterator[Case]:
    """Rotate once with the IUT, check the trace, then crash it everywhere (CRASH_07), and
    crash each recovery up to ``depth`` times in a row (I3)."""
    scenario = Scenario()
    for secret in (scenario.old, scenario.new, *scenario.keys):
        ctx.redactor.add(secret)
    initial = scenario.initial_image()
    directory = ws.fresh(thaw(initial))
    params: Json = {
        "datadir": str(directory),
        "old_passphrase": scenario.old.hex(),
        "new_passphrase": scenario.new.hex(),
    }
    if ctx.session.supports("inject_randomness"):
        params["ivs"] = [iv.hex() for iv in scenario.ivs("rotation")]
    answer, ops = _traced(ctx, "rotate", params)
    if not answer.ok:
        yield _case(
            "rotation trace",
            Verdict.FAILED,
            ("ROT_01",),
            expected="a rotation of a freshly bootstrapped cluster",
            found=answer.summary(),
        )
        return
    figures.rotation_ops = len(ops)
    after = snapshot(directory)
    try:
        contents = faithful(ops, initial, after)
    except BadTrace as exc:
        yield _case(
            "rotation trace accounts for the disk", Verdict.FAILED, ("ADP_05",), found=str(exc)
        )
        return
    yield _case("rotation trace accounts for the disk", Verdict.PASSED, ("ADP_05",))
    yield from point_cases("rotation", ops, POINTS["rotation"])
    explorer = Explorer(
        SPEC,
        scenario,
        depth=depth,
        rotation=lambda: replayed(ops, initial, contents),
        startup=iut_startup(ctx, ws, figures),
        state_cap=STATE_CAP,
    )
    report = explorer.run()
    figures.states = len(report.states)
    figures.capped = report.capped
    violations: dict[tuple[str, str], Violation] = {}
    for v in report.violations:
        key = (v.invariant, v.reason)
        rank = (v.crash_point, v.state.severity, v.detail)
        best = violations.get(key)
        if best is None or rank < (best.crash_point, best.state.severity, best.detail):
            violations[key] = v
    figures.recovery_states = report.recovery_states
    figures.depths = report.depths
    source: dict[str, object] = {
        "check": "crash exploration of the IUT's rotation trace",
        "rotation operations": figures.rotation_ops,
        "crash states": figures.states,
        "recovery crash states": figures.recovery_states,
        "recovery depth": explorer.depth,
        "recovery crash states per depth": "; ".join(
            f"depth {d}: {reached} ({new} new)"
            for d, (reached, new) in enumerate(figures.depths, 1)
        ),
        "startups": figures.startups,
    }
    if figures.capped:
        source["capped at"] = STATE_CAP
    if not violations:
        yield _case(
            "crash states of the rotation", Verdict.PASSED, ("CRASH_07", "REC_06"), **source
        )
        return
    for (invariant, reason), v in sorted(violations.items()):
        ctx.progress.failed()
        yield _case(
            f"crash states of the rotation: {invariant}",
            Verdict.FAILED,
            INVARIANT_REQS[invariant],
            **source,
            expected=f"invariant {invariant} in every crash state",
            found=reason,
            detail="minimal example: " + _describe(v, ops),
        )


# -- sequences of bootstrap and recovery ------------------------------------------------------
def bootstrap_sequence(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    params: Json = {"datadir": str(ws.fresh()), "passphrase": s.a.hex()}
    if ctx.session.supports("inject_randomness"):
        params |= {"keys": [k.hex() for k in s.keys], "ivs": [v.hex() for v in s.ivs]}
    answer, ops = _traced(ctx, "bootstrap", params)
    if not answer.ok:
        yield _case(
            "bootstrap",
            Verdict.FAILED,
            ("BOOT_04",),
            expected="ok",
            found=answer.summary(),
        )
        return
    yield from point_cases("bootstrap", ops, POINTS["bootstrap"])


def recovery_sequences(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    good_a = key_set(ws, s.a, s.keys, s.ivs)
    good_b = rotated(ws, good_a, s.a, s.b, s.ivs2)
    # (case, starting listing, expected decision, its points, the requirement deciding it)
    states: list[tuple[str, Listing, str, tuple[Point, ...], str]] = [
        ("nothing", good_a, "nothing", (), "REC_01"),
        (
            "discard_tmp",
            {**good_a, **as_tmp(good_b)},
            "discard_tmp",
            POINTS["recovery discard_tmp"],
            "REC_03",
        ),
        (
            "adopt_tmp",
            {**good_b, **as_tmp(good_a)},
            "adopt_tmp",
            POINTS["recovery adopt_tmp"],
            "REC_04",
        ),
        (
            "adopt_tmp without pg_cryptokeys",
            as_tmp(good_a),
            "adopt_tmp",
            POINTS["recovery adopt_tmp without pg_cryptokeys"],
            "REC_04",
        ),
    ]
    for name, listing, decision, points, rule in states:
        directory = ws.fresh(listing)
        answer, ops = _traced(ctx, "recover", {"datadir": str(directory), "passphrase": s.a.hex()})
        if not answer.ok or answer.result.get("decision") != decision:
            yield _case(
                f"recovery {name}",
                Verdict.FAILED,
                (rule,),
                expected=f"decision {decision}",
                found=answer.summary(),
            )
            continue
        try:
            faithful(ops, freeze(listing), snapshot(directory))
        except BadTrace as exc:
            yield _case(f"recovery trace: {name}", Verdict.FAILED, ("ADP_05",), found=str(exc))
            continue
        if points:
            yield from point_cases(f"recovery {name}", ops, points)
        elif changes := [i for i, op in enumerate(ops) if not op.kind.startswith("fsync")]:
            yield _case(
                f"recovery {name}",
                Verdict.FAILED,
                ("REC_01",),
                expected="no change (fsyncs alone are allowed): the decision is nothing",
                found=f"operation {changes[0] + 1} ({ops[changes[0]]})",
                detail="trace: " + _excerpt(ops, changes[:1]),
            )
        else:
            yield _case(f"recovery {name}", Verdict.PASSED, ("REC_01",))


def upgrade_sequence(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    """UPG_01: the IUT's ``upgrade_keys`` between two clusters initialised under one
    passphrase; the new cluster's trace must be rotation's swap (ROT_04..ROT_06)."""
    old = ws.fresh(key_set(ws, s.a, s.keys, s.ivs))
    new = ws.fresh(key_set(ws, s.a, s.keys, s.ivs2))  # its own records (other IVs)
    before = snapshot(new)
    params: Json = {"old_datadir": str(old), "new_datadir": str(new), "passphrase": s.a.hex()}
    answer, ops = _traced(ctx, "upgrade_keys", params)
    if not answer.ok:
        yield _case(
            "upgrade sequence",
            Verdict.FAILED,
            ("UPG_01",),
            expected="ok: the old keys open under the new cluster's passphrase",
            found=answer.summary(),
        )
        return
    try:
        faithful(ops, freeze(before), snapshot(new))
    except BadTrace as exc:
        yield _case("upgrade trace", Verdict.FAILED, ("ADP_05",), found=str(exc))
        return
    yield from point_cases("upgrade", ops, POINTS["upgrade"])


# -- the stage ----------------------------------------------------------------------------------
def run_durability(ctx: Context) -> Iterator[Case]:
    if ctx.syscalls_unavailable is not None:
        reason = f"syscall tracing unavailable: {ctx.syscalls_unavailable}"
        yield _case("durability", Verdict.UNSUPPORTED, UNSUPPORTED_REQS, reason=reason)
        return
    if ctx.syscalls is None and not ctx.session.supports("fs_trace"):
        reason = (
            "the IUT does not claim fs_trace: durability cannot be seen through the adapter "
            "(run with --trace-syscalls to judge it from its system calls)"
        )
        yield _case("durability", Verdict.UNSUPPORTED, UNSUPPORTED_REQS, reason=reason)
        return
    ws = Workspace()
    figures = Figures()
    secrets = Secrets.derive(ctx.seed)
    for value in (secrets.a, secrets.b, *secrets.keys):
        ctx.redactor.add(value)
    parts: tuple[tuple[str, str, Callable[[], Iterator[Case]]], ...] = (
        ("bootstrap", "bootstrap", lambda: bootstrap_sequence(ctx, ws, secrets)),
        ("recover", "recover", lambda: recovery_sequences(ctx, ws, secrets)),
        ("rotate", "rotation", lambda: explore_rotation(ctx, ws, figures)),
        ("upgrade_keys", "upgrade", lambda: upgrade_sequence(ctx, ws, secrets)),
    )
    try:
        for op, label, part in parts:
            if not ctx.session.supports(op, "startup"):
                yield _case(f"{label} durability", Verdict.UNSUPPORTED, UNSUPPORTED_REQS)
                continue
            try:
                yield from part()
            except BadTrace as exc:
                ctx.progress.failed()
                yield _case(f"{label} trace", Verdict.FAILED, ("ADP_05",), found=str(exc))
            except NotExclusive as exc:
                ctx.progress.failed()
                yield _case(
                    f"{label} exclusive creation",
                    Verdict.FAILED,
                    ("DISK_07",),
                    expected="every key file created with O_CREAT|O_EXCL",
                    found=str(exc),
                )
            except NotJudged as exc:
                # System calls the crash model cannot replay: never passed, never failed.
                yield _case(
                    f"{label} durability", Verdict.UNSUPPORTED, UNSUPPORTED_REQS, reason=str(exc)
                )
            except AdapterFailure as exc:
                ctx.session.recover_from(exc)
                ctx.progress.failed()
                yield _case(
                    f"{label} durability",
                    Verdict.FAILED,
                    ("ADP_01",),
                    expected="a response line",
                    found=f"{exc.kind}: {ctx.redactor.scrub(exc.message)}",
                )
    except RunAborted:
        return
    finally:
        ws.close()
