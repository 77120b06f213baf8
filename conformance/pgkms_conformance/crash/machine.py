"""The rotation and recovery protocols as a state machine whose transitions are literal data.

Two rules, after h11's ``_state.py``:
- everything that defines a protocol's sequence of disk operations lives in this file: the
  legacy (2020) protocol is *executed* from these tables (``legacy.py`` interprets them), the
  spec protocol's trace, produced by the reference code, is *checked* against them
  (``explorer.py``), and the spec's diagram and tables are *drawn* from them
  (``spec/_ext/pgkms_crash.py``). A step written as code anywhere else must be mirrored here.
- this file knows nothing about bytes, keys or passphrases: only which operation is applied to
  which directory role, and which phase of the protocol that leads to.

Theory of operation. A ``Procedure`` is a chain of ``Step``s. Each step is one filesystem
operation (``kind``) on one role (the data directory, ``pg_cryptokeys``, ``pg_cryptokeys_tmp``,
one of their key files, or the rename of the one onto the other), and names the ``phase`` the
protocol is in once the step is done. Steps marked ``per_key_file`` form a group that runs
once per key file, in id order; ``per_entry`` groups run once per entry found in the
directory (zero or more times). Reads (stat, list, read) never change the phase.

Invariants the spec procedure keeps, and the explorer proves by exhaustion (spec: Rotation
state machine): at every phase some directory holds a complete key set that is durable or is
reconstructed by recovery; a directory is removed only once the other one is durable; every
change to a directory's entries is made durable before the next step depends on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pgkms.fs import join
from pgkms.layout import KEY_DIR, KEY_FILE_NAMES, KEY_TMP_DIR

Role = Literal["datadir", "current", "tmp", "current file", "tmp file", "tmp -> current"]
Repeat = Literal["once", "per_key_file", "per_entry"]


@dataclass(frozen=True)
class Step:
    """One filesystem operation of a procedure, the phase it leads to, and why."""

    kind: str  # a trace operation (``simfs.TRACE_OPS``): mkdir, create, fsync, fsync_dir, ...
    role: Role
    phase: str
    repeat: Repeat = "once"
    reqs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Procedure:
    name: str
    start: str
    steps: tuple[Step, ...]
    phase_notes: tuple[tuple[str, str], ...] = ()  # phase -> what is on disk, durably

    @property
    def phases(self) -> list[str]:
        seen = [self.start]
        for step in self.steps:
            if step.phase not in seen:
                seen.append(step.phase)
        return seen


# --- the spec's rotation (ROT_04..ROT_06) ---------------------------------------------------------
SPEC_ROTATION: Final = Procedure(
    name="spec rotation",
    start="stable",
    steps=(
        Step("mkdir", "tmp", "tmp_filling", reqs=("ROT_04",)),
        Step("create", "tmp file", "tmp_filling", "per_key_file", ("ROT_04", "DISK_07")),
        Step("fsync", "tmp file", "tmp_filling", "per_key_file", ("ROT_04", "DISK_07")),
        Step("fsync_dir", "tmp", "tmp_written", reqs=("ROT_04", "DISK_07")),
        Step("fsync_dir", "datadir", "tmp_durable", reqs=("ROT_04", "DISK_07")),
        Step("unlink", "current file", "current_emptying", "per_entry", ("ROT_05",)),
        Step("fsync_dir", "current", "current_empty", reqs=("ROT_05", "DISK_07")),
        Step("rmdir", "current", "current_removed", reqs=("ROT_05",)),
        Step("fsync_dir", "datadir", "current_gone", reqs=("ROT_05", "DISK_07")),
        Step("rename", "tmp -> current", "renamed", reqs=("ROT_06",)),
        Step("fsync_dir", "datadir", "rotated", reqs=("ROT_06", "DISK_07")),
    ),
    phase_notes=(
        ("stable", "pg_cryptokeys holds the keys under the old passphrase; no tmp"),
        ("tmp_filling", "tmp being written; its entry and its files' entries not yet durable"),
        ("tmp_written", "tmp complete, its entries durable; tmp's own entry not yet durable"),
        ("tmp_durable", "both directories complete and durable"),
        ("current_emptying", "pg_cryptokeys losing its files (not yet durable)"),
        ("current_empty", "pg_cryptokeys durably empty; tmp durable"),
        ("current_removed", "pg_cryptokeys removed (not yet durable)"),
        ("current_gone", "only tmp, durably"),
        ("renamed", "tmp renamed to pg_cryptokeys (not yet durable)"),
        ("rotated", "pg_cryptokeys holds the keys under the new passphrase, durably"),
    ),
)

# --- the spec's pg_upgrade copy (UPG_01): in the new cluster, rotation's own swap ---------------
# ``copy_keys_for_upgrade`` reads the old cluster (recovering it first, which issues nothing when
# no rotation was interrupted) and replaces the new cluster's key set with the old records by
# ``replace_key_set``: the new cluster's trace is ROT_04..ROT_06, step for step.
SPEC_UPGRADE: Final = Procedure(
    name="spec upgrade: the new cluster's key swap",
    start=SPEC_ROTATION.start,
    steps=tuple(
        Step(s.kind, s.role, s.phase, s.repeat, (*s.reqs, "UPG_01")) for s in SPEC_ROTATION.steps
    ),
    phase_notes=(
        ("stable", "pg_cryptokeys holds the new cluster's own keys; no tmp"),
        ("tmp_filling", "tmp (the old cluster's records) being written; entries not yet durable"),
        ("tmp_written", "tmp complete, its entries durable; tmp's own entry not yet durable"),
        ("tmp_durable", "both key sets complete and durable"),
        ("current_emptying", "the new cluster's own set losing its files (not yet durable)"),
        ("current_empty", "pg_cryptokeys durably empty; tmp durable"),
        ("current_removed", "pg_cryptokeys removed (not yet durable)"),
        ("current_gone", "only tmp, durably"),
        ("renamed", "tmp renamed to pg_cryptokeys (not yet durable)"),
        ("rotated", "pg_cryptokeys holds the old cluster's records, durably"),
    ),
)

# --- the spec's bootstrap (BOOT_04): written aside in pg_cryptokeys_tmp, then renamed ---------
SPEC_BOOTSTRAP: Final = Procedure(
    name="spec bootstrap",
    start="empty",
    steps=(
        Step("mkdir", "tmp", "filling", reqs=("BOOT_04", "DISK_01")),
        Step("create", "tmp file", "filling", "per_key_file", ("BOOT_04", "DISK_07")),
        Step("fsync", "tmp file", "filling", "per_key_file", ("BOOT_04", "DISK_07")),
        Step("fsync_dir", "tmp", "written", reqs=("BOOT_04", "DISK_07")),
        Step("fsync_dir", "datadir", "tmp_durable", reqs=("BOOT_04", "DISK_07")),
        Step("rename", "tmp -> current", "renamed", reqs=("BOOT_04",)),
        Step("fsync_dir", "datadir", "bootstrapped", reqs=("BOOT_04", "DISK_07")),
    ),
    phase_notes=(
        ("empty", "no key directory"),
        ("filling", "pg_cryptokeys_tmp being written; its entries not yet durable"),
        ("written", "pg_cryptokeys_tmp complete, its entries durable; its own entry not yet"),
        ("tmp_durable", "pg_cryptokeys_tmp complete and durable; no pg_cryptokeys"),
        ("renamed", "renamed to pg_cryptokeys (not yet durable)"),
        ("bootstrapped", "pg_cryptokeys holds the new keys, durably"),
    ),
)

# --- the spec's recovery actions (REC_03, REC_04), per decision of pgkms.recovery ----------------
SPEC_RECOVERY: Final[dict[str, Procedure]] = {
    "discard_tmp": Procedure(
        name="spec recovery: discard_tmp",
        start="both",
        steps=(
            Step("unlink", "tmp file", "tmp_emptying", "per_entry", ("REC_03",)),
            Step("fsync_dir", "tmp", "tmp_empty", reqs=("REC_03", "DISK_07")),
            Step("rmdir", "tmp", "tmp_removed", reqs=("REC_03",)),
            Step("fsync_dir", "datadir", "recovered", reqs=("REC_03", "DISK_07")),
        ),
    ),
    "adopt_tmp": Procedure(
        name="spec recovery: adopt_tmp",
        start="both",
        steps=(
            Step("unlink", "current file", "current_emptying", "per_entry", ("REC_04",)),
            Step("fsync_dir", "current", "current_empty", reqs=("REC_04", "DISK_07")),
            Step("rmdir", "current", "current_removed", reqs=("REC_04",)),
            Step("fsync_dir", "datadir", "current_gone", reqs=("REC_04", "DISK_07")),
            Step("rename", "tmp -> current", "renamed", reqs=("REC_04",)),
            Step("fsync_dir", "datadir", "recovered", reqs=("REC_04", "DISK_07")),
        ),
    ),
    # adopt_tmp when pg_cryptokeys is absent starts at the rename
    "adopt_tmp (no current)": Procedure(
        name="spec recovery: adopt_tmp, pg_cryptokeys absent",
        start="only_tmp",
        steps=(
            Step("rename", "tmp -> current", "renamed", reqs=("REC_04",)),
            Step("fsync_dir", "datadir", "recovered", reqs=("REC_04", "DISK_07")),
        ),
    ),
}

# --- the 2020 patch's rotation (facts file, "Passphrase rotation") ------------------------------
LEGACY_ROTATION: Final = Procedure(
    name="2020 rotation",
    start="stable",
    steps=(
        Step("mkdir", "tmp", "tmp_created"),
        Step("fsync_dir", "tmp", "tmp_filling"),  # fsynced while still empty
        Step("create", "tmp file", "tmp_filling", "per_key_file"),
        Step("fsync", "tmp file", "tmp_filling", "per_key_file"),
        Step("unlink", "current file", "current_emptying", "per_entry"),  # rmtree: no fsync
        Step("rmdir", "current", "current_removed"),
        Step("rename", "tmp -> current", "renamed"),
        Step("fsync_dir", "current", "rotated"),  # PGDATA never fsynced (DEV_FSYNC)
    ),
    phase_notes=(
        ("stable", "pg_cryptokeys holds the keys under the old passphrase; no tmp"),
        ("tmp_created", "tmp created; its entry in PGDATA never made durable"),
        ("tmp_filling", "key files written and fsynced; tmp's entries never made durable"),
        ("current_emptying", "pg_cryptokeys losing its files; never made durable"),
        ("current_removed", "pg_cryptokeys removed; never made durable"),
        ("renamed", "tmp renamed to pg_cryptokeys; never made durable"),
        ("rotated", "the renamed directory's entries durable; PGDATA's entries still volatile"),
    ),
)

# --- the 2020 patch's recovery (facts file, "Recovery") -----------------------------------------
# (pg_cryptokeys_tmp present, pg_cryptokeys present, tmp holds 3 key files) -> decision.
# Counting reads every key file of tmp: one of the wrong size is a fatal error before any
# decision is taken (facts file: "could not read file"). Nothing is validated or fsynced.
LEGACY_RECOVERY_TABLE: Final[dict[tuple[bool, bool, bool], str]] = {
    (False, False, False): "nothing",
    (False, True, False): "nothing",
    (True, False, False): "rename_tmp",
    (True, True, True): "replace_current",
    (True, True, False): "remove_tmp",
}

LEGACY_RECOVERY: Final[dict[str, Procedure]] = {
    "rename_tmp": Procedure(
        name="2020 recovery: rename_tmp",
        start="only_tmp",
        steps=(Step("rename", "tmp -> current", "recovered"),),
    ),
    "replace_current": Procedure(
        name="2020 recovery: replace_current",
        start="both",
        steps=(
            Step("unlink", "current file", "current_emptying", "per_entry"),
            Step("rmdir", "current", "current_removed"),
            Step("rename", "tmp -> current", "recovered"),
        ),
    ),
    "remove_tmp": Procedure(
        name="2020 recovery: remove_tmp",
        start="both",
        steps=(
            Step("unlink", "tmp file", "tmp_emptying", "per_entry"),
            Step("rmdir", "tmp", "recovered"),
        ),
    ),
}

# --- what recovery decides after a crash in each phase of a rotation ----------------------------
# Declared here, proved by the explorer (tests/crash/test_machine.py): the set of decisions the
# protocol's recovery takes, over every crash state of the phase and both passphrases.
SPEC_CRASH_DECISIONS: Final[dict[str, frozenset[str]]] = {
    "stable": frozenset({"nothing"}),
    "tmp_filling": frozenset({"nothing", "discard_tmp", "adopt_tmp", "fail"}),
    "tmp_written": frozenset({"nothing", "discard_tmp", "adopt_tmp"}),
    "tmp_durable": frozenset({"discard_tmp", "adopt_tmp"}),
    "current_emptying": frozenset({"discard_tmp", "adopt_tmp", "fail"}),
    "current_empty": frozenset({"adopt_tmp", "fail"}),
    "current_removed": frozenset({"adopt_tmp", "fail"}),
    "current_gone": frozenset({"adopt_tmp", "fail"}),
    "renamed": frozenset({"nothing", "adopt_tmp", "fail"}),
    "rotated": frozenset({"nothing"}),
}

LEGACY_CRASH_DECISIONS: Final[dict[str, frozenset[str]]] = {
    "stable": frozenset({"nothing"}),
    "tmp_created": frozenset({"nothing", "remove_tmp"}),
    "tmp_filling": frozenset({"nothing", "remove_tmp", "replace_current", "fail"}),
    "current_emptying": frozenset({"nothing", "remove_tmp", "replace_current"}),
    "current_removed": frozenset({"nothing", "remove_tmp", "rename_tmp", "replace_current"}),
    "renamed": frozenset({"nothing", "remove_tmp", "rename_tmp", "replace_current"}),
    "rotated": frozenset({"nothing", "rename_tmp", "replace_current"}),
}


def role_path(datadir: str, role: Role, name: str = "") -> str:
    """The path a role stands for; file roles take the file's name."""
    return {
        "datadir": datadir,
        "current": join(datadir, KEY_DIR),
        "tmp": join(datadir, KEY_TMP_DIR),
        "current file": join(datadir, KEY_DIR, name),
        "tmp file": join(datadir, KEY_TMP_DIR, name),
        "tmp -> current": join(datadir, KEY_TMP_DIR),
    }[role]


def classify(datadir: str, kind: str, path: str, target: str = "") -> tuple[str, Role]:
    """The (kind, role) event a recorded operation stands for; ValueError when it has none."""
    current, tmp = join(datadir, KEY_DIR), join(datadir, KEY_TMP_DIR)
    if kind == "rename":
        if (path, target) == (tmp, current):
            return kind, "tmp -> current"
        raise ValueError(f"rename {path} -> {target} is no step of any protocol")
    roles: dict[str, Role] = {datadir: "datadir", current: "current", tmp: "tmp"}
    if path in roles:
        return kind, roles[path]
    head, _, _ = path.rpartition("/")
    if head == current:
        return kind, "current file"
    if head == tmp:
        return kind, "tmp file"
    raise ValueError(f"{kind} {path} touches nothing a protocol owns")


class ProtocolDeviation(Exception):
    """A recorded trace does not follow its procedure's steps; ``reqs`` are those of the step
    the trace should have taken there (the rules the divergence breaks)."""

    def __init__(self, message: str, reqs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reqs = reqs


def groups(procedure: Procedure) -> Iterator[tuple[Repeat, tuple[Step, ...]]]:
    """The procedure's steps, consecutive repeated steps gathered into one group."""
    pending: list[Step] = []
    for step in procedure.steps:
        if pending and (step.repeat == "once" or step.repeat != pending[0].repeat):
            yield pending[0].repeat, tuple(pending)
            pending = []
        pending.append(step)
        if step.repeat == "once":
            yield "once", tuple(pending)
            pending = []
    if pending:
        yield pending[0].repeat, tuple(pending)


def match(procedure: Procedure, events: Sequence[tuple[str, Role]]) -> list[str]:
    """Follow ``events`` through ``procedure``; return the phase after each event.

    Raises ``ProtocolDeviation`` at the first event the procedure does not allow, or when the
    events stop before the procedure's last step.
    """
    phases: list[str] = []
    at = 0

    def take(step: Step) -> None:
        nonlocal at
        if at >= len(events) or events[at] != (step.kind, step.role):
            found = " ".join(events[at]) if at < len(events) else "the end of the trace"
            raise ProtocolDeviation(
                f"{procedure.name}: operation {at + 1}: expected {step.kind} {step.role}, "
                f"found {found}",
                step.reqs,
            )
        phases.append(step.phase)
        at += 1

    for repeat, group in groups(procedure):
        if repeat == "once":
            take(group[0])
            continue
        rounds = 0
        while at < len(events) and events[at] == (group[0].kind, group[0].role):
            for step in group:
                take(step)
            rounds += 1
        if repeat == "per_key_file" and rounds != len(KEY_FILE_NAMES):
            raise ProtocolDeviation(
                f"{procedure.name}: {group[0].kind} {group[0].role}: expected "
                f"{len(KEY_FILE_NAMES)} rounds, found {rounds}",
                group[0].reqs,
            )
    if at != len(events):
        last = procedure.steps[-1].reqs if procedure.steps else ("REC_01",)
        raise ProtocolDeviation(
            f"{procedure.name}: operation {at + 1} ({' '.join(events[at])}) is past the last step",
            last,
        )
    return phases
