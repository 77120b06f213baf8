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
  with the same passphrase, ends exactly as the uninterrupted startup did;
- I4 a failing startup changes nothing on disk (so it never adopts, then rejects, keys).

Results are memoized by (image, passphrase): startup is a pure function of the two.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from pgkms.bootstrap import bootstrap
from pgkms.errors import KmsError
from pgkms.fs import FileSystem, join
from pgkms.kdf import derive_kek
from pgkms.keyset import InternalKeys, load_key_set
from pgkms.layout import INTERNAL_KEY_LEN, IV_LEN, KEY_DIR, KEY_TMP_DIR, KeyId
from pgkms.randomness import RandomSource, ScriptedRandom
from pgkms.recovery import decide
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.startup import startup

from pgkms_conformance.crash.legacy import legacy_decide, legacy_rotate, legacy_startup
from pgkms_conformance.crash.machine import (
    LEGACY_ROTATION,
    SPEC_ROTATION,
    Procedure,
    Role,
    classify,
    match,
)
from pgkms_conformance.crash.simfs import (
    ROOT,
    CrashState,
    Image,
    Op,
    Ordering,
    SimFileSystem,
    SimulatedCrash,
)

INVARIANTS: Final = ("I1", "I2", "I3", "I4")

Rotate = Callable[[FileSystem, str, Secret, Secret, RandomSource], object]
Startup = Callable[[FileSystem, str, Secret], InternalKeys]
Decide = Callable[[FileSystem, str, Secret], str]


def seeded(label: str, size: int) -> bytes:
    """Deterministic test material: SHAKE-128 of the project's vector seed and a label."""
    return hashlib.shake_128(b"pgkms-vectors/v1/" + label.encode()).digest(size)


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
        return seeded(f"{self.label}/old-passphrase", 64)

    @property
    def new(self) -> bytes:
        return seeded(f"{self.label}/new-passphrase", 64)

    @property
    def keys(self) -> tuple[bytes, ...]:
        return tuple(seeded(f"{self.label}/key-{k.value}", INTERNAL_KEY_LEN) for k in KeyId)

    def ivs(self, purpose: str) -> list[bytes]:
        return [seeded(f"{self.label}/{purpose}-iv-{k.value}", IV_LEN) for k in KeyId]

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
    violations: list[Violation] = field(default_factory=list)
    decisions: dict[str, set[str]] = field(default_factory=dict)

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
    """Runs one protocol's rotation, crashes it everywhere, and checks every state."""

    def __init__(
        self,
        protocol: Protocol,
        scenario: Scenario | None = None,
        ordering: Ordering = "subset",
        torn: bool = True,
    ) -> None:
        self.protocol = protocol
        self.scenario = scenario or Scenario()
        self.ordering: Ordering = ordering
        self.torn = torn
        self.initial = self.scenario.initial_image()
        self.passphrases = {"old": self.scenario.old, "new": self.scenario.new}
        self._outcomes: dict[tuple[Image, bytes], tuple[Outcome, list[Op]]] = {}
        # image -> (crash state, how it arose): states a crash during recovery leaves
        self.recovery_states: dict[Image, tuple[CrashState, str]] = {}

    # --- running the protocol ----------------------------------------------------------------

    def rotation_trace(self) -> list[Op]:
        """The mutating operations of one uninterrupted rotation; checked against the table."""
        fs = SimFileSystem(self.initial, self.scenario.datadir)
        self.protocol.rotate(
            fs,
            self.scenario.datadir,
            Secret(self.scenario.old),
            Secret(self.scenario.new),
            self.scenario.rotation_random(),
        )
        return [op for op in fs.trace if op.mutating]

    def phases(self, trace: list[Op]) -> list[str]:
        """The machine's phase after each operation (``ProtocolDeviation`` if off-table)."""
        events: list[tuple[str, Role]] = [
            classify(self.scenario.datadir, op.kind, op.path, op.target) for op in trace
        ]
        return match(self.protocol.procedure, events)

    def crash_during_rotation(self, crash_point: int) -> SimFileSystem:
        """The filesystem as the rotation left it when the power failed after ``crash_point``."""
        fs = SimFileSystem(self.initial, self.scenario.datadir, crash_after=crash_point)
        with contextlib.suppress(SimulatedCrash):
            self.protocol.rotate(
                fs,
                self.scenario.datadir,
                Secret(self.scenario.old),
                Secret(self.scenario.new),
                self.scenario.rotation_random(),
            )
        return fs

    def startup_outcome(self, image: Image, passphrase: bytes) -> tuple[Outcome, list[Op]]:
        """Startup on ``image``: its outcome, and the mutating operations it issued."""
        key = (image, passphrase)
        if key not in self._outcomes:
            decision_fs = SimFileSystem(image, self.scenario.datadir)
            try:
                decision = self.protocol.decide(
                    decision_fs, self.scenario.datadir, Secret(passphrase)
                )
            except KmsError:
                decision = "fail"
            fs = SimFileSystem(image, self.scenario.datadir)
            error: str | None = None
            keys: tuple[bytes, ...] | None = None
            try:
                opened = self.protocol.startup(fs, self.scenario.datadir, Secret(passphrase))
                keys = tuple(k.reveal() for k in opened.by_id().values())
            except KmsError as exc:
                error = exc.code
            ops = [op for op in fs.trace if op.mutating]
            self._outcomes[key] = (Outcome(error, keys, fs.image(), decision), ops)
        return self._outcomes[key]

    def crashed_startups(self, image: Image, passphrase: bytes) -> list[tuple[int, CrashState]]:
        """Every state a crash during startup (that is, during its recovery) can leave."""
        _, ops = self.startup_outcome(image, passphrase)
        found: dict[Image, tuple[int, CrashState]] = {}
        for point in range(len(ops) + 1):
            fs = SimFileSystem(image, self.scenario.datadir, crash_after=point)
            with contextlib.suppress(SimulatedCrash, KmsError):
                self.protocol.startup(fs, self.scenario.datadir, Secret(passphrase))
            for state in fs.crash_states(self.ordering, self.torn):
                if state.image != image and state.image not in found:
                    found[state.image] = (point, state)
        for point, state in found.values():
            if state.image not in self.recovery_states:
                decision = self.startup_outcome(image, passphrase)[0].decision
                self.recovery_states[state.image] = (
                    state,
                    f"recovery ({decision}) crashed after {point} operation(s)",
                )
        return list(found.values())

    def content_labels(self) -> dict[bytes, str]:
        """Names for the key-file contents the rotation writes, to describe images."""
        labels: dict[bytes, str] = {}
        final = SimFileSystem(self.initial, self.scenario.datadir)
        self.protocol.rotate(
            final,
            self.scenario.datadir,
            Secret(self.scenario.old),
            Secret(self.scenario.new),
            self.scenario.rotation_random(),
        )
        for which, image in (("old", self.initial), ("new", final.image())):
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
        keys = self.scenario.keys
        outcomes = {name: self.startup_outcome(image, p)[0] for name, p in self.passphrases.items()}
        out: list[Violation] = []

        def violation(inv: str, reason: str, who: str, detail: str = "") -> None:
            out.append(Violation(inv, reason, found.state, found.crash_point, who, detail))

        # I1: some passphrase starts the cluster, and no startup returns other keys.
        started = [name for name, o in outcomes.items() if o.error is None]
        if not started:
            on_disk = any(
                self.opens(image, d, p) == keys
                for d in (KEY_DIR, KEY_TMP_DIR)
                for p in self.passphrases.values()
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
            if outcomes[name].keys != keys:
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
            # I3: a crash during recovery, then startup again, ends the same way.
            for point, state in self.crashed_startups(image, passphrase):
                again, _ = self.startup_outcome(state.image, passphrase)
                if (again.error, again.keys, again.image) != (
                    outcome.error,
                    outcome.keys,
                    outcome.image,
                ):
                    first = "starts" if outcome.error is None else f"fails ({outcome.error})"
                    second = "starts" if again.error is None else f"fails ({again.error})"
                    if first == second:
                        second += " with a different disk"
                    violation(
                        "I3",
                        f"crash during recovery ({outcome.decision}) changes the outcome: "
                        f"{first} -> {second}",
                        name,
                        f"recovery crashed after {point} operation(s); lost: "
                        + ("; ".join(state.lost) or "nothing")
                        + ("; torn: " + "; ".join(state.torn) if state.torn else ""),
                    )
        return out

    # --- the whole exploration ---------------------------------------------------------------

    def run(self) -> Report:
        trace = self.rotation_trace()
        phases = [self.protocol.procedure.start, *self.phases(trace)]
        states: dict[Image, Found] = {}
        decisions: dict[str, set[str]] = {}
        for point in range(len(trace) + 1):
            fs = self.crash_during_rotation(point)
            for state in fs.crash_states(self.ordering, self.torn):
                for passphrase in self.passphrases.values():
                    outcome, _ = self.startup_outcome(state.image, passphrase)
                    decisions.setdefault(phases[point], set()).add(outcome.decision)
                if state.image not in states:
                    states[state.image] = Found(state, point, phases[point])
        report = Report(self.protocol.name, self.ordering, self.torn, trace, states)
        report.decisions = decisions
        for found in states.values():
            report.violations.extend(self.check(found))
        report.recovery_states = len(self.recovery_states)
        report.recovery_states_new = len(set(self.recovery_states) - set(states))
        return report


def explore(protocol: str, ordering: Ordering = "subset", torn: bool = True) -> Report:
    return Explorer(PROTOCOLS[protocol], ordering=ordering, torn=torn).run()
