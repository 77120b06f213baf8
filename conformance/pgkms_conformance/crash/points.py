"""The durability requirements as *points*: orderings a procedure's trace must not violate.

A point reads "Y is durable before X is issued": the effect ``durable`` (a key file's data, or a
change to a directory's entries) must be covered by an fsync issued after it and before the
first operation of ``before`` (or before the answer, when ``before`` is empty, or when the
trace never issues it). The effect itself must have been issued: a rotation that never renames
breaks ROT_06's point as surely as one that renames without the fsync.

Anything that violates no point is allowed; in particular extra fsyncs of files or directories
(the 2020 patch fsyncs the still-empty ``pg_cryptokeys_tmp`` right after ``mkdir``), the fsyncs
of one step in either order, and key files written in another order. What the operations do to
the disk is judged elsewhere (the trace must account for the disk, ADP_05; the crash explorer
judges every state a crash can leave, CRASH_07).

These tables are the one source: the harness's durability stage judges the IUT's trace
(``fs_trace``, ADP_05) point by point, each point on its own and charged to its own requirement,
and the spec's tables of points (``.. pgkms-durability-points::``) are drawn from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, Protocol

from pgkms.layout import KEY_FILE_NAMES

from pgkms_conformance.crash.machine import (
    SPEC_BOOTSTRAP,
    SPEC_RECOVERY,
    SPEC_ROTATION,
    SPEC_UPGRADE,
    Procedure,
    Role,
    Step,
    classify,
    groups,
)

# What must be durable: the data of a created file, or a change of entries in its directory.
Durable = Literal["data", "entry"]


@dataclass(frozen=True)
class Effect:
    """``kind`` on ``role`` (a machine role: ``tmp file``, ``current``, ``tmp -> current`` ...);
    ``each_key_file``: the effect is required for each of 0000, 0001, 0002, not just once."""

    durable: Durable
    kind: str
    role: Role
    each_key_file: bool = False

    def __str__(self) -> str:
        what = f"{self.kind} {self.role}" + (" (each key file)" if self.each_key_file else "")
        return f"the data of {what}" if self.durable == "data" else f"the entries of {what}"


@dataclass(frozen=True)
class Point:
    """One ordering: ``effect`` durable before any event of ``before`` (empty: the answer)."""

    requirement: str  # the requirement that states the point: charged when it is broken
    effect: Effect
    before: tuple[tuple[str, Role], ...]
    text: str  # the point in words, for the spec and the report
    also: tuple[str, ...] = ("DISK_07",)  # the general rules it restates: cited, not charged
    step: int = 0  # the procedure's fsync step (1-based, as the spec's step tables) it comes from


def entry_parent(role: Role) -> str:
    """The directory whose fsync makes a change of ``role``'s entry durable."""
    return {"tmp file": "tmp", "current file": "current"}.get(role, "datadir")


# -- the points, drawn from the procedures ------------------------------------------------------
NAMES: Final[dict[str, str]] = {
    "datadir": "PGDATA",
    "current": "pg_cryptokeys",
    "tmp": "pg_cryptokeys_tmp",
    "current file": "a file of pg_cryptokeys",
    "tmp file": "a file of pg_cryptokeys_tmp",
    "tmp -> current": "pg_cryptokeys_tmp to pg_cryptokeys",
}
_FILES = {"tmp": "tmp file", "current": "current file"}


def _parent(step: Step) -> Role:
    return "datadir" if step.role not in _FILES.values() else _dir_of(step.role)


def _dir_of(role: Role) -> Role:
    return "tmp" if role == "tmp file" else "current"


def _covers(fsync: Step, step: Step) -> bool:
    """Does ``fsync`` make ``step``'s effect durable (its data, or its entry)?"""
    if fsync.kind == "fsync":
        return step.kind == "create" and step.role == fsync.role
    return step.kind not in ("fsync", "fsync_dir") and _parent(step) == fsync.role


def points_of(procedure: Procedure) -> tuple[Point, ...]:
    """The procedure's durability points: each of its fsyncs makes the changes before it durable
    (those since the previous fsync of the same file or directory), and those changes must be
    durable before any later change the procedure makes is issued (its repeated group aside:
    each key file is fsynced before the procedure relies on it, not before the next one is
    created), or before the answer when no change follows. Charged to the fsync step's first
    requirement; its others are cited."""
    points: list[Point] = []
    done: set[tuple[int, str]] = set()  # (step, fsync kind): effects an earlier fsync covered
    flat = [(g, step) for g, (_, group) in enumerate(groups(procedure)) for step in group]
    for index, (g, fsync) in enumerate(flat):
        if fsync.kind not in ("fsync", "fsync_dir"):
            continue
        covered = [
            i
            for i, (_, step) in enumerate(flat[:index])
            if (i, fsync.kind) not in done and _covers(fsync, step)
        ]
        done.update((i, fsync.kind) for i in covered)
        later = tuple(
            dict.fromkeys(
                (step.kind, step.role)
                for h, step in flat[index + 1 :]
                if h != g and step.kind not in ("fsync", "fsync_dir")
            )
        )
        for step in dict.fromkeys(flat[i][1] for i in covered):
            points.append(replace(_point(fsync, step, later), step=index + 1))
    return tuple(dict.fromkeys(points))


def _where(role: Role) -> str:
    return NAMES[_dir_of(role)] if role in _FILES.values() else NAMES[role]


def describe(kind: str, role: Role, *, first: bool = False) -> str:
    """A procedure's change in words: ``the rmdir of pg_cryptokeys``."""
    if kind == "create":
        return f"the creation of each key file in {_where(role)}"
    if kind == "unlink":
        return f"the {'first unlink' if first else 'unlinks'} in {_where(role)}"
    if kind == "rename":
        return "the rename of pg_cryptokeys_tmp to pg_cryptokeys"
    return f"the {kind} of {_where(role)}"


def _point(fsync: Step, step: Step, before: tuple[tuple[str, Role], ...]) -> Point:
    durable: Durable = "data" if fsync.kind == "fsync" else "entry"
    effect = Effect(durable, step.kind, step.role, each_key_file=step.repeat == "per_key_file")
    if durable == "data":
        what = f"the data of each key file in {_where(step.role)} (fsync of each file)"
    else:
        what = f"{describe(step.kind, step.role)} (fsync of {NAMES[fsync.role]})"
    when = describe(*before[0], first=True) if before else "the answer"
    reqs = fsync.reqs or ("DISK_07",)
    text = f"{what} durable before {when}"
    return Point(reqs[0], effect, before, text, tuple(r for r in reqs[1:] if r != reqs[0]))


def _charged_to(req: str, points: tuple[Point, ...]) -> tuple[Point, ...]:
    """The same points stated by a more specific rule (the upgrade's copy is rotation's swap):
    charged to ``req``, the rules they came from cited."""
    return tuple(
        replace(p, requirement=req, also=tuple(dict.fromkeys((p.requirement, *p.also))))
        for p in points
    )


def _without(req: str, points: tuple[Point, ...]) -> tuple[Point, ...]:
    return tuple(replace(p, also=tuple(r for r in p.also if r != req)) for p in points)


# The procedures the harness judges an IUT's trace against, by the name its cases carry.
PROCEDURES: Final[dict[str, Procedure]] = {
    "bootstrap": SPEC_BOOTSTRAP,
    "rotation": SPEC_ROTATION,
    "recovery discard_tmp": SPEC_RECOVERY["discard_tmp"],
    "recovery adopt_tmp": SPEC_RECOVERY["adopt_tmp"],
    "recovery adopt_tmp without pg_cryptokeys": SPEC_RECOVERY["adopt_tmp (no current)"],
    "upgrade": SPEC_UPGRADE,
}
POINTS: Final[dict[str, tuple[Point, ...]]] = {
    name: points_of(procedure) for name, procedure in PROCEDURES.items()
}
# The upgrade's copy is rotation's swap, stated by UPG_01: its points are charged there.
POINTS["upgrade"] = _charged_to("UPG_01", _without("UPG_01", POINTS["upgrade"]))


# -- judging a trace -----------------------------------------------------------------------------
class TracedOp(Protocol):
    """What the points need of a recorded operation (the harness's ``TraceOp`` and the
    explorer's ``Op`` both have it)."""

    @property
    def kind(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def target(self) -> str: ...


@dataclass(frozen=True)
class Breach:
    """A point the trace violates: ``index`` is the 0-based position of the operation it was
    due before (``len(ops)`` for the answer); ``culprit`` the effect left uncovered, if issued."""

    point: Point
    index: int
    culprit: int | None
    reason: str


def _events(datadir: str, ops: Sequence[TracedOp]) -> list[tuple[str, Role] | None]:
    """Each operation's (kind, role); None for one on a path no procedure owns (no point is
    about it: a lock file, say)."""
    events: list[tuple[str, Role] | None] = []
    for op in ops:
        try:
            events.append(classify(datadir, op.kind, op.path, op.target))
        except ValueError:
            events.append(None)
    return events


def _covered(ops: Sequence[TracedOp], at: int, upto: int, point: Point, datadir: str) -> bool:
    """Is the effect of ``ops[at]`` covered by an fsync among ``ops[at + 1 : upto]``?"""
    effect = point.effect
    path = ops[at].target if effect.kind == "rename" else ops[at].path
    if effect.durable == "data":
        return any(o.kind == "fsync" and o.path == path for o in ops[at + 1 : upto])
    parent = path.rpartition("/")[0] if effect.role in ("tmp file", "current file") else datadir
    return any(o.kind == "fsync_dir" and o.path == parent for o in ops[at + 1 : upto])


def breach(datadir: str, ops: Sequence[TracedOp], point: Point) -> Breach | None:
    """None when ``ops`` keep ``point``; else where and how they break it."""
    events = _events(datadir, ops)
    due = next((i for i, e in enumerate(events) if e in point.before), len(ops))
    effect = point.effect
    issued = [i for i in range(due) if events[i] == (effect.kind, effect.role)]
    if effect.each_key_file:
        latest = {ops[i].path.rpartition("/")[2]: i for i in issued}
        missing = [name for name in KEY_FILE_NAMES if name not in latest]
        if missing:
            return Breach(
                point, due, None, f"{effect.kind} {effect.role} {missing[0]} never issued"
            )
        issued = sorted(latest.values())
    elif not issued:
        return Breach(point, due, None, f"{effect.kind} {effect.role} never issued")
    elif effect.durable == "data" or effect.kind in ("mkdir", "rename", "rmdir"):
        issued = issued[-1:]  # the last one counts: an earlier one was undone in between
    for i in issued:
        if not _covered(ops, i, due, point, datadir):
            parent = "the file" if effect.durable == "data" else NAMES[entry_parent(effect.role)]
            return Breach(point, due, i, f"no fsync of {parent} after operation {i + 1}")
    return None


def judge(datadir: str, ops: Sequence[TracedOp], points: Sequence[Point]) -> list[Breach | None]:
    """Each point judged on its own: a breach, or None."""
    return [breach(datadir, ops, p) for p in points]
