"""Exhaustive crash-state exploration of a rotation protocol, checking invariants I1..I4.

For one rotation from a freshly bootstrapped cluster, the explorer crashes the protocol after
each of its mutating operations in turn, enumerates every disk image the crash can leave
(``SimFileSystem.crash_states``), and on each image runs startup, which recovers first, with
the old and with the new passphrase configured. It checks (spec: Crash model):

- I1 the internal keys are never lost or altered: some configured passphrase starts the
  cluster, and every successful startup returns exactly the original keys;
- I2 after a successful startup exactly one key set exists (``pg_cryptokeys``, no tmp) and it
  opens under the configured passphrase;
- I3 recovery is idempotent: crashing anywhere in startup's own trace, then starting again
  with the same passphrase, ends exactly as the uninterrupted startup did; checked ``depth``
  crashes deep (default 2: a crash in recovery, a crash in the recovery that follows, then an
  uninterrupted startup);
- I4 a failing startup changes nothing on disk (so it never adopts, then rejects, keys).

The same checks run on pg_upgrade's copy (``UPGRADE``, ``UpgradeExplorer``): the new
cluster's key set is swapped for the old cluster's by rotation's own swap, and I1 reads "the
new cluster opens its own original keys or the old cluster's, never neither, never others".

The engine is one loop with two parameters: where the crashed operation's trace comes from
(``TraceSource``: by default the protocol's rotation run in process on the simulated
filesystem; the harness's durability stage replays an IUT's reported trace instead) and how a
startup is run on a crash image (``StartupRunner``: by default the protocol's startup in
process; the durability stage asks the IUT through its adapter). Both give a ``Traced``: the
mutating operations, and the simulated filesystem the power failure after any prefix of them
leaves, so crashes during recovery are explored the same way whoever ran it.

Results are memoized by (image, passphrase): startup is a pure function of the two. The states
a crash during recovery leaves are memoized the same way, so exploring deeper costs only the
images no shallower crash has produced.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Final

from pgkms.bootstrap import bootstrap
from pgkms.errors import KmsError
from pgkms.fs import FileSystem, Stat, join
from pgkms.internal_keys import InternalKeys, load_key_set
from pgkms.kdf import derive_kek
from pgkms.layout import INTERNAL_KEY_LEN, IV_LEN, KEY_DIR, KEY_TMP_DIR, KeyId
from pgkms.randomness import RandomSource, ScriptedRandom
from pgkms.recovery import decide
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.startup import startup
from pgkms.upgrade import copy_keys_for_upgrade

from pgkms_conformance.crash.legacy import legacy_decide, legacy_rotate, legacy_startup
from pgkms_conformance.crash.machine import (
    LEGACY_ROTATION,
    SPEC_ROTATION,
    SPEC_UPGRADE,
    Procedure,
    Role,
    classify,
    match,
)
from pgkms_conformance.crash.simfs import (
    ROOT,
    CrashState,
    Op,
    Ordering,
    SimFileSystem,
    SimulatedCrash,
)
from pgkms_conformance.image import Image
from pgkms_conformance.material import derive

INVARIANTS: Final = ("I1", "I2", "I3", "I4")
DEFAULT_DEPTH: Final = 2  # crashes during recovery, one after the other, before a clean startup

Rotate = Callable[[FileSystem, str, Secret, Secret, RandomSource], object]
Startup = Callable[[FileSystem, str, Secret], InternalKeys]
Decide = Callable[[FileSystem, str, Secret], str]


@dataclass(frozen=True)
class Protocol:
    """A rotation protocol under test: its code, and the procedure its trace must follow."""

    name: str
    procedure: Procedure
    rotate: Rotate
    startup: Startup
    decide: Decide


def _spec_rotate(fs: FileSystem, d: str, old: Secret, new: Secret, r: RandomSource) -> object:
    return rotate(d, old, new, fs, r)


def _spec_startup(fs: FileSystem, d: str, passphrase: Secret) -> InternalKeys:
    return startup(d, passphrase, fs)


def _spec_decide(fs: FileSystem, d: str, passphrase: Secret) -> str:
    return decide(fs, d, derive_kek(passphrase)).value


def _legacy_decide(fs: FileSystem, d: str, passphrase: Secret) -> str:
    return legacy_decide(fs, d)


SPEC: Final = Protocol("spec", SPEC_ROTATION, _spec_rotate, _spec_startup, _spec_decide)
LEGACY: Final = Protocol("2020", LEGACY_ROTATION, legacy_rotate, legacy_startup, _legacy_decide)
PROTOCOLS: Final = {p.name: p for p in (SPEC, LEGACY)}


@dataclass(frozen=True)
class Scenario:
    """One rotation, old -> new, of a cluster bootstrapped with fixed keys and IVs."""

    label: str = "crash"
    datadir: str = ROOT

    @property
    def old(self) -> bytes:
        return derive(f"{self.label}/old-passphrase", 64)

    @property
    def new(self) -> bytes:
        return derive(f"{self.label}/new-passphrase", 64)

    @property
    def keys(self) -> tuple[bytes, ...]:
        return tuple(derive(f"{self.label}/key-{k.value}", INTERNAL_KEY_LEN) for k in KeyId)

    def ivs(self, purpose: str) -> list[bytes]:
        return [derive(f"{self.label}/{purpose}-iv-{k.value}", IV_LEN) for k in KeyId]

    def rotation_random(self) -> ScriptedRandom:
        return ScriptedRandom(self.ivs("rotation"))

    def initial_image(self) -> Image:
        """The disk right after bootstrap under the old passphrase (BOOT_04: all durable)."""
        fs = SimFileSystem(root=self.datadir)
        bootstrap(
            self.datadir, Secret(self.old), fs, ScriptedRandom([*self.keys, *self.ivs("boot")])
        )
        assert fs.durable_image() == fs.image()
        return fs.image()


@dataclass(frozen=True)
class Outcome:
    """How a startup ended: the error code, or the keys; and the disk afterwards."""

    error: str | None
    keys: tuple[bytes, ...] | None
    image: Image
    decision: str

    def describe(self) -> str:
        if self.error is not None:
            return f"fails with {self.error}"
        return "starts"


@dataclass(frozen=True)
class Traced:
    """What one operation did, as the crash engine needs it: its mutating operations, and the
    simulated filesystem left when the power fails after the first ``n`` of them."""

    ops: list[Op]
    crashed: Callable[[int], SimFileSystem]
    # the procedure's phase before the first operation and after each one (``machine.match``);
    # None when the trace is not matched against a procedure (an IUT's)
    phases: list[str] | None = None


@dataclass(frozen=True)
class StartupRun:
    """How one startup on a crash image ended: the error code, or the keys; the disk after it;
    and its own trace, so a crash during it (that is, during its recovery) can be explored."""

    error: str | None
    keys: tuple[bytes, ...] | None
    image: Image
    trace: Traced


# The operation crashed during (once per exploration), and startup on an image with a
# passphrase (memoized by the explorer).
TraceSource = Callable[[], Traced]
StartupRunner = Callable[[Image, bytes], StartupRun]


@dataclass(frozen=True)
class Violation:
    invariant: str
    reason: str  # the violation class: the same text for every state that breaks it this way
    state: CrashState
    crash_point: int  # mutating operations of the rotation done before the crash
    passphrase: str  # "old", "new" or "either"
    detail: str = ""  # for I3: where in recovery the second crash struck


@dataclass
class Found:
    """A distinct crash image, with the earliest, least damaging way the rotation reaches it."""

    state: CrashState
    crash_point: int
    phase: str


@dataclass
class Report:
    protocol: str
    ordering: Ordering
    torn: bool
    trace: list[Op]
    states: dict[Image, Found]
    recovery_states: int = 0  # distinct states a crash during recovery leaves
    recovery_states_new: int = 0  # of those, states no crash during rotation leaves
    # per recovery depth d = 1, 2, ...: (distinct states a crash in the d-th successive recovery
    # leaves, of those the states no shallower crash, nor a crash in rotation, leaves)
    depths: list[tuple[int, int]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    decisions: dict[str, set[str]] = field(default_factory=dict)
    capped: bool = False  # the exploration stopped at the explorer's ``state_cap``

    def counts(self) -> dict[str, int]:
        """Crash states violating each invariant (a state counts once per invariant)."""
        seen = {(v.invariant, v.state.image) for v in self.violations}
        counted = Counter(invariant for invariant, _ in seen)
        return {inv: counted.get(inv, 0) for inv in INVARIANTS}

    def classes(self) -> dict[tuple[str, str], Violation]:
        """One minimal example per violation class: earliest crash, fewest losses."""
        best: dict[tuple[str, str], Violation] = {}
        for v in self.violations:
            key = (v.invariant, v.reason)
            rank = (v.crash_point, v.state.severity, v.detail, v.state.lost, v.state.torn)
            if key not in best or rank < (
                best[key].crash_point,
                best[key].state.severity,
                best[key].detail,
                best[key].state.lost,
                best[key].state.torn,
            ):
                best[key] = v
        return dict(sorted(best.items()))


class Explorer:
    """Crashes one rotation everywhere and checks every state it leaves.

    ``rotation``: the trace to crash (default: ``protocol``'s rotation of the scenario's initial
    image, in process). ``startup``: how startup runs on an image (default: ``protocol``'s, in
    process). ``state_cap``: stop collecting crash images at this many (None: never), reported
    as ``Report.capped``. The recovery decision that describes each outcome is always
    ``protocol``'s.
    """

    def __init__(
        self,
        protocol: Protocol,
        scenario: Scenario | None = None,
        ordering: Ordering = "subset",
        torn: bool = True,
        depth: int = DEFAULT_DEPTH,
        *,
        rotation: TraceSource | None = None,
        startup: StartupRunner | None = None,
        state_cap: int | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1 (found {depth})")
        self.protocol = protocol
        self.scenario = scenario or Scenario()
        self.ordering: Ordering = ordering
        self.torn = torn
        self.depth = depth
        self.state_cap = state_cap
        self.rotation: TraceSource = rotation or self.rotation_in_process
        self.startup: StartupRunner = startup or self.startup_in_process
        self.initial = self.scenario.initial_image()
        self.passphrases = {"old": self.scenario.old, "new": self.scenario.new}
        self._outcomes: dict[tuple[Image, bytes], tuple[Outcome, Traced]] = {}
        self._crashed: dict[tuple[Image, bytes], list[tuple[int, CrashState]]] = {}
        self._diverging: dict[tuple[Image, bytes, int], list[Divergence]] = {}
        # per recovery depth (index 0: the first recovery): image -> (crash state, how it
        # arose), for the states a crash during that recovery leaves
        self.reached: list[dict[Image, tuple[CrashState, str]]] = [{} for _ in range(depth)]
        # the states a crash during the first recovery leaves (the crash-recovery vectors)
        self.recovery_states = self.reached[0]

    def accepts(self, name: str, keys: tuple[bytes, ...]) -> bool:
        """I1: may a startup with passphrase ``name`` return ``keys``? (Rotation: only the
        original keys, under either passphrase.)"""
        return keys == self.scenario.keys

    # --- running the protocol ----------------------------------------------------------------

    def _rotated(self, crash_after: int | None = None) -> SimFileSystem:
        """A simulated disk after a rotation from the initial image, uninterrupted unless the
        power fails after operation ``crash_after``."""
        fs = SimFileSystem(self.initial, self.scenario.datadir, crash_after=crash_after)
        with contextlib.suppress(SimulatedCrash):
            self.protocol.rotate(
                fs,
                self.scenario.datadir,
                Secret(self.scenario.old),
                Secret(self.scenario.new),
                self.scenario.rotation_random(),
            )
        return fs

    def rotation_trace(self) -> list[Op]:
        """The mutating operations of one uninterrupted rotation; checked against the table."""
        return [op for op in self._rotated().trace if op.mutating]

    def phases(self, trace: list[Op]) -> list[str]:
        """The machine's phase after each operation (``ProtocolDeviation`` if off-table)."""
        events: list[tuple[str, Role]] = [
            classify(self.scenario.datadir, op.kind, op.path, op.target) for op in trace
        ]
        return match(self.protocol.procedure, events)

    def crash_during_rotation(self, crash_point: int) -> SimFileSystem:
        """The filesystem as the rotation left it when the power failed after ``crash_point``."""
        return self._rotated(crash_after=crash_point)

    def rotation_in_process(self) -> Traced:
        trace = self.rotation_trace()
        phases = [self.protocol.procedure.start, *self.phases(trace)]
        return Traced(trace, self.crash_during_rotation, phases)

    def startup_in_process(self, image: Image, passphrase: bytes) -> StartupRun:
        """The protocol's startup on ``image``, in process on the simulated filesystem."""
        datadir = self.scenario.datadir
        fs = SimFileSystem(image, datadir)
        error: str | None = None
        keys: tuple[bytes, ...] | None = None
        try:
            opened = self.protocol.startup(fs, datadir, Secret(passphrase))
            keys = tuple(k.reveal() for k in opened.by_id().values())
        except KmsError as exc:
            error = exc.code

        def crashed(point: int) -> SimFileSystem:
            crashing = SimFileSystem(image, datadir, crash_after=point)
            with contextlib.suppress(SimulatedCrash, KmsError):
                self.protocol.startup(crashing, datadir, Secret(passphrase))
            return crashing

        ops = [op for op in fs.trace if op.mutating]
        return StartupRun(error, keys, fs.image(), Traced(ops, crashed))

    def decision(self, image: Image, passphrase: bytes) -> str:
        """The protocol's recovery decision on ``image`` ("fail" when it cannot decide)."""
        try:
            return self.protocol.decide(
                SimFileSystem(image, self.scenario.datadir),
                self.scenario.datadir,
                Secret(passphrase),
            )
        except KmsError:
            return "fail"

    def _started(self, image: Image, passphrase: bytes) -> tuple[Outcome, Traced]:
        key = (image, passphrase)
        if key not in self._outcomes:
            run = self.startup(image, passphrase)
            outcome = Outcome(run.error, run.keys, run.image, self.decision(image, passphrase))
            self._outcomes[key] = (outcome, run.trace)
        return self._outcomes[key]

    def startup_outcome(self, image: Image, passphrase: bytes) -> tuple[Outcome, list[Op]]:
        """Startup on ``image``: its outcome, and the mutating operations it issued."""
        outcome, traced = self._started(image, passphrase)
        return outcome, traced.ops

    def crashed_startups(self, image: Image, passphrase: bytes) -> list[tuple[int, CrashState]]:
        """Every state a crash during startup (that is, during its recovery) can leave, other
        than ``image`` itself, each with the earliest crash point that leaves it (memoized)."""
        key = (image, passphrase)
        if key not in self._crashed:
            _, traced = self._started(image, passphrase)
            found: dict[Image, tuple[int, CrashState]] = {}
            for point in range(len(traced.ops) + 1):
                for state in traced.crashed(point).crash_states(self.ordering, self.torn):
                    if state.image != image and state.image not in found:
                        found[state.image] = (point, state)
            self._crashed[key] = list(found.values())
        return self._crashed[key]

    def divergences(self, image: Image, passphrase: bytes, level: int = 1) -> list[Divergence]:
        """I3 from ``level`` down to ``self.depth``: every chain of crashes, one in each
        successive recovery, after which startup ends otherwise than it does on ``image``.

        A chain stops at the first crash whose restart already diverges; a restart that ends
        the same way is explored one level deeper. Memoized by (image, passphrase, level), so
        an image reached by many chains is expanded once per level.
        """
        key = (image, passphrase, level)
        if key in self._diverging:
            return self._diverging[key]
        outcome, _ = self.startup_outcome(image, passphrase)
        found: list[Divergence] = []
        for point, state in self.crashed_startups(image, passphrase):
            self.reached[level - 1].setdefault(
                state.image,
                (state, f"recovery ({outcome.decision}) crashed after {point} operation(s)"),
            )
            again, _ = self.startup_outcome(state.image, passphrase)
            link = Crash(level, outcome.decision, point, state)
            if _ending(again) != _ending(outcome):
                found.append(Divergence(again, (link,)))
            elif level < self.depth:
                for deeper in self.divergences(state.image, passphrase, level + 1):
                    found.append(Divergence(deeper.again, (link, *deeper.chain)))
        self._diverging[key] = found
        return found

    def content_labels(self) -> dict[bytes, str]:
        """Names for the key-file contents the rotation writes, to describe images."""
        labels: dict[bytes, str] = {}
        for which, image in (("old", self.initial), ("new", self._rotated().image())):
            for path, _, content in image:
                if content is not None:
                    labels[content] = f"key {path[-1]} under the {which} passphrase"
        return labels

    # --- invariants --------------------------------------------------------------------------

    def opens(self, image: Image, directory: str, passphrase: bytes) -> tuple[bytes, ...] | None:
        fs = SimFileSystem(image, self.scenario.datadir)
        try:
            keys = load_key_set(
                fs, join(self.scenario.datadir, directory), derive_kek(Secret(passphrase))
            )
        except KmsError:
            return None
        return tuple(k.reveal() for k in keys.by_id().values())

    def check(self, found: Found) -> list[Violation]:
        image = found.state.image
        outcomes = {name: self.startup_outcome(image, p)[0] for name, p in self.passphrases.items()}
        out: list[Violation] = []

        def violation(inv: str, reason: str, who: str, detail: str = "") -> None:
            out.append(Violation(inv, reason, found.state, found.crash_point, who, detail))

        # I1: some passphrase starts the cluster, and no startup returns other keys.
        started = [name for name, o in outcomes.items() if o.error is None]
        if not started:
            on_disk = any(
                (keys := self.opens(image, d, p)) is not None and self.accepts(name, keys)
                for d in (KEY_DIR, KEY_TMP_DIR)
                for name, p in self.passphrases.items()
            )
            codes = ", ".join(f"{n}: {o.error}" for n, o in outcomes.items())
            if on_disk:
                violation(
                    "I1",
                    f"keys unreachable: a valid set is on disk, yet startup fails ({codes})",
                    "either",
                )
            else:
                violation("I1", f"keys destroyed: no valid set remains ({codes})", "either")
        for name in started:
            opened = outcomes[name].keys
            if opened is None or not self.accepts(name, opened):
                violation("I1", "keys altered: startup returns different internal keys", name)

        for name, passphrase in self.passphrases.items():
            outcome = outcomes[name]
            # I2: a successful startup leaves one key set, opening under the passphrase.
            if outcome.error is None:
                if any(path.startswith(KEY_TMP_DIR + "/") for path, _, _ in outcome.image):
                    violation("I2", f"startup succeeds but leaves {KEY_TMP_DIR}", name)
                if self.opens(outcome.image, KEY_DIR, passphrase) is None:
                    violation("I2", "startup succeeds but the key set on disk does not open", name)
            # I4: a failing startup changes nothing.
            elif outcome.image != image:
                violation(
                    "I4",
                    f"failing startup ({outcome.error}) changed the disk "
                    f"(recovery decision {outcome.decision})",
                    name,
                )
            # I3: crashes during recovery (up to ``depth`` in a row), then startup again, end
            # the same way.
            for divergence in self.divergences(image, passphrase):
                again = divergence.again
                first = "starts" if outcome.error is None else f"fails ({outcome.error})"
                second = "starts" if again.error is None else f"fails ({again.error})"
                if first == second:
                    second += " with a different disk"
                deep = len(divergence.chain)
                where = "crash during recovery" if deep == 1 else f"{deep} crashes in recovery"
                violation(
                    "I3",
                    f"{where} ({outcome.decision}) changes the outcome: {first} -> {second}",
                    name,
                    "; then ".join(link.describe() for link in divergence.chain),
                )
        return out

    # --- the whole exploration ---------------------------------------------------------------

    def run(self) -> Report:
        traced = self.rotation()
        trace = traced.ops
        phases = traced.phases or [f"after {p} operation(s)" for p in range(len(trace) + 1)]
        states: dict[Image, Found] = {}
        decisions: dict[str, set[str]] = {}
        capped = False
        for point in range(len(trace) + 1):
            for state in traced.crashed(point).crash_states(self.ordering, self.torn):
                new = state.image not in states
                if new and self.state_cap is not None and len(states) >= self.state_cap:
                    capped = True
                    break
                for passphrase in self.passphrases.values():
                    outcome, _ = self.startup_outcome(state.image, passphrase)
                    decisions.setdefault(phases[point], set()).add(outcome.decision)
                if new:
                    states[state.image] = Found(state, point, phases[point])
            if capped:
                break
        report = Report(self.protocol.name, self.ordering, self.torn, trace, states)
        report.decisions = decisions
        report.capped = capped
        for found in states.values():
            report.violations.extend(self.check(found))
        report.recovery_states = len(self.recovery_states)
        report.recovery_states_new = len(set(self.recovery_states) - set(states))
        report.depths = self.depth_figures(set(states))
        return report

    def depth_figures(self, rotation_states: set[Image]) -> list[tuple[int, int]]:
        """Per recovery depth: distinct states reached, and how many no shallower crash (nor
        the rotation) reached."""
        known = set(rotation_states)
        figures = []
        for reached in self.reached:
            figures.append((len(reached), len(set(reached) - known)))
            known |= set(reached)
        return figures


def _ending(outcome: Outcome) -> tuple[str | None, tuple[bytes, ...] | None, Image]:
    """What I3 compares: the error code or keys, and the disk left behind."""
    return outcome.error, outcome.keys, outcome.image


@dataclass(frozen=True)
class Crash:
    """One crash in a chain of crashes during successive recoveries."""

    level: int  # 1: the first recovery after the crash in rotation; 2: the one after that
    decision: str  # what that recovery was doing
    point: int  # its mutating operations done before the power failed
    state: CrashState

    def describe(self) -> str:
        ordinal = {1: "recovery", 2: "the second recovery"}.get(
            self.level, f"recovery {self.level}"
        )
        return (
            f"{ordinal} ({self.decision}) crashed after {self.point} operation(s); lost: "
            + ("; ".join(self.state.lost) or "nothing")
            + ("; torn: " + "; ".join(self.state.torn) if self.state.torn else "")
        )


@dataclass(frozen=True)
class Divergence:
    """A chain of crashes in successive recoveries, and how the startup after it ended."""

    again: Outcome
    chain: tuple[Crash, ...]


def explore(
    protocol: str, ordering: Ordering = "subset", torn: bool = True, depth: int = DEFAULT_DEPTH
) -> Report:
    return explorer_for(protocol, ordering, torn, depth).run()


# --- pg_upgrade under the crash model ------------------------------------------------------------
OLD_ROOT: Final = "oldpgdata"  # the old cluster's data directory, beside the new one (``ROOT``)


@dataclass(frozen=True)
class UpgradeScenario(Scenario):
    """pg_upgrade from an old cluster to a new one, both initialised under one passphrase
    (``old``), each with its own keys: the new cluster's are ``keys``, the old's ``old_keys``."""

    label: str = "upgrade"

    @property
    def old_keys(self) -> tuple[bytes, ...]:
        return tuple(
            derive(f"{self.label}/old-cluster-key-{k.value}", INTERNAL_KEY_LEN) for k in KeyId
        )

    def old_cluster_image(self) -> Image:
        fs = SimFileSystem(root=OLD_ROOT)
        draws = [*self.old_keys, *self.ivs("old-cluster-boot")]
        bootstrap(OLD_ROOT, Secret(self.old), fs, ScriptedRandom(draws))
        return fs.image()


class TwoClusters:
    """A ``FileSystem`` over two simulated data directories: paths under ``OLD_ROOT`` go to
    the old cluster's, everything else to the new cluster's (the one that may crash)."""

    def __init__(self, old: SimFileSystem, new: FileSystem) -> None:
        self.old, self.new = old, new

    def _on(self, path: str) -> FileSystem:
        return self.old if path == OLD_ROOT or path.startswith(OLD_ROOT + "/") else self.new

    def stat(self, path: str) -> Stat | None:
        return self._on(path).stat(path)

    def list_dir(self, path: str) -> list[str]:
        return self._on(path).list_dir(path)

    def read_file(self, path: str) -> bytes:
        return self._on(path).read_file(path)

    def lock(self, datadir: str, timeout: float) -> AbstractContextManager[None]:
        return self._on(datadir).lock(datadir, timeout)

    def mkdir(self, path: str, mode: int) -> None:
        self._on(path).mkdir(path, mode)

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        self._on(path).create_file(path, data, mode)

    def fsync_file(self, path: str) -> None:
        self._on(path).fsync_file(path)

    def fsync_dir(self, path: str) -> None:
        self._on(path).fsync_dir(path)

    def rename(self, src: str, dst: str) -> None:
        self._on(src).rename(src, dst)  # a rename across clusters fails in the new one

    def unlink(self, path: str) -> None:
        self._on(path).unlink(path)

    def rmdir(self, path: str) -> None:
        self._on(path).rmdir(path)


def upgrade_protocol(scenario: UpgradeScenario) -> Protocol:
    """pg_upgrade's key copy as a protocol: the "rotation" the explorer crashes is
    ``copy_keys_for_upgrade`` into the new cluster; startup and recovery are the spec's."""
    old_image = scenario.old_cluster_image()

    def run(fs: FileSystem, d: str, passphrase: Secret, _new: Secret, _r: RandomSource) -> object:
        old = SimFileSystem(old_image, OLD_ROOT)
        keys = copy_keys_for_upgrade(OLD_ROOT, d, passphrase, TwoClusters(old, fs))
        # the old cluster is only read (it has no interrupted rotation to recover)
        assert not any(op.mutating for op in old.trace), old.trace
        return keys

    return Protocol("upgrade", SPEC_UPGRADE, run, _spec_startup, _spec_decide)


class UpgradeExplorer(Explorer):
    """The explorer on pg_upgrade's copy: crash states of the new cluster during the swap.

    One passphrase is configured (both clusters were initialised under it, as UPG_01 requires
    for the copy to proceed). I1 reads: startup opens the new cluster's own original keys or
    the old cluster's keys, never neither and never any other; I2..I4 are unchanged.
    """

    def __init__(
        self,
        scenario: UpgradeScenario | None = None,
        ordering: Ordering = "subset",
        torn: bool = True,
        depth: int = DEFAULT_DEPTH,
    ) -> None:
        chosen = scenario or UpgradeScenario()
        super().__init__(upgrade_protocol(chosen), chosen, ordering, torn, depth)
        self.upgrade = chosen
        self.passphrases = {"cluster": chosen.old}

    def accepts(self, name: str, keys: tuple[bytes, ...]) -> bool:
        return keys in (self.upgrade.keys, self.upgrade.old_keys)

    def content_labels(self) -> dict[bytes, str]:
        labels: dict[bytes, str] = {}
        for which, image in (
            ("the new cluster's own", self.initial),
            ("the old cluster's", self.upgrade.old_cluster_image()),
        ):
            for path, _, content in image:
                if content is not None:
                    labels[content] = f"{which} key {path[-1]}"
        return labels


NAMES: Final = (*PROTOCOLS, "upgrade")


def explorer_for(
    name: str, ordering: Ordering = "subset", torn: bool = True, depth: int = DEFAULT_DEPTH
) -> Explorer:
    """The explorer of one of ``NAMES``: a rotation protocol, or pg_upgrade's copy."""
    if name == "upgrade":
        return UpgradeExplorer(ordering=ordering, torn=torn, depth=depth)
    return Explorer(PROTOCOLS[name], ordering=ordering, torn=torn, depth=depth)
