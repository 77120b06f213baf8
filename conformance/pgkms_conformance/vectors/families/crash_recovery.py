"""``crash_recovery.json``: every distinct disk state a crash during passphrase rotation, or
during the recovery that follows, can leave, for the spec's protocol and the 2020 patch's
(spec: Crash model; CRASH_08, REC_01 .. REC_06, START_01, START_04).

The states come from the crash explorer (``pgkms_conformance.crash.explorer``); the expected
outcome of each is always the spec's startup (which recovers first), also for the states only
the 2020 protocol can reach: a conforming implementation must recover safely from a disk the
patch left behind. Each test is then run through the reference adapter on a real directory like
every other family (``builder.Group.add``), so the explorer's simulated outcome and the
reference's outcome on disk must agree before a vector is written.
"""

from __future__ import annotations

from typing import Final

from pgkms.layout import KEY_TMP_DIR

from pgkms_conformance.crash.explorer import LEGACY, SPEC, Explorer, Found
from pgkms_conformance.crash.simfs import CrashState
from pgkms_conformance.image import Image, thaw, to_json
from pgkms_conformance.vectors import drbg, schemas
from pgkms_conformance.vectors.builder import Family, GeneratorError

NOTES: Final = {
    "LEGACY_2020_ONLY": "Only the 2020 protocol (no fsync of PGDATA, recovery by counting "
    "files) can leave this state; a conforming implementation must still recover from it "
    "safely.",
    "CRASH_DURING_RECOVERY": "The state a crash leaves part-way through recovery itself; "
    "recovery must handle it again with the same outcome (REC_06).",
    "TORN_KEY_FILE": "A key file whose data was not yet fsynced came back zero-length, half "
    "written or zero-filled (CRASH_04).",
    "LOST_ENTRY": "A directory change (create, unlink, rmdir, rename) that was not yet fsynced "
    "was lost (CRASH_03).",
    "CONFIGURED_OLD": "Startup runs with the passphrase in force before the rotation.",
    "CONFIGURED_NEW": "Startup runs with the passphrase the rotation was switching to.",
    "RECOVERY_NOTHING": "No pg_cryptokeys_tmp: recovery does nothing (REC_01).",
    "RECOVERY_DISCARD_TMP": "pg_cryptokeys is valid: recovery removes pg_cryptokeys_tmp (REC_03).",
    "RECOVERY_ADOPT_TMP": "Only pg_cryptokeys_tmp is valid: recovery puts it in place (REC_04).",
    "RECOVERY_FAILS": "Neither directory is valid: startup fails, nothing changes (REC_05).",
}

# flag -> its bug type and the effect of failing it (``pgkms_conformance.vectors.triage``).
TRIAGE: Final = {
    "LEGACY_2020_ONLY": (
        "LEGACY",
        "cannot recover safely from a state only the 2020 protocol left",
    ),
    "CRASH_DURING_RECOVERY": (
        "KEY_LOSS",
        "a recovery interrupted by a crash ends otherwise than the first: keys lost or replaced",
    ),
    "TORN_KEY_FILE": (
        "KEY_LOSS",
        "takes a torn key file for a valid one, or discards the valid key set because of it",
    ),
    "LOST_ENTRY": (
        "KEY_LOSS",
        "misreads a directory change the crash lost and loses or replaces the keys",
    ),
    "CONFIGURED_OLD": ("KEY_LOSS", "starts with another key set than the old passphrase opens"),
    "CONFIGURED_NEW": ("KEY_LOSS", "starts with another key set than the new passphrase opens"),
    "RECOVERY_NOTHING": ("KEY_LOSS", "changes a key directory that needed no recovery"),
    "RECOVERY_DISCARD_TMP": (
        "KEY_LOSS",
        "keeps or adopts pg_cryptokeys_tmp instead of the valid pg_cryptokeys",
    ),
    "RECOVERY_ADOPT_TMP": ("KEY_LOSS", "fails to adopt pg_cryptokeys_tmp, the only valid key set"),
    "RECOVERY_FAILS": ("KEY_LOSS", "starts, or changes the disk, when no key set opens"),
}

_DECISION_FLAGS: Final = {
    "nothing": "RECOVERY_NOTHING",
    "discard_tmp": "RECOVERY_DISCARD_TMP",
    "adopt_tmp": "RECOVERY_ADOPT_TMP",
    "fail": "RECOVERY_FAILS",
}
_DECISION_REQS: Final = {
    "nothing": ["REC_01"],
    "discard_tmp": ["REC_02", "REC_03"],
    "adopt_tmp": ["REC_02", "REC_04"],
    "fail": ["REC_02", "REC_05"],
}

# The fields each group shares, typed for the family's schema.
GROUP_FIELDS: Final = {
    "protocol": {"enum": ["spec", "2020"]},
    "crashModel": {
        "type": "object",
        "properties": {"ordering": {"enum": ["subset", "prefix"]}, "torn": {"type": "boolean"}},
        "required": ["ordering", "torn"],
        "additionalProperties": False,
    },
    "oldPassphrase": schemas.HEX,
    "newPassphrase": schemas.HEX,
    "keys": schemas.hex_list(3, 64),
}

HEADER: Final = [
    "Disk states a crash during passphrase rotation, or during recovery, can leave (spec: "
    "Crash model). Each test runs startup, which recovers first, with the configured passphrase "
    "on the datadir listing (paths relative to PGDATA; directories end in '/'; file contents in "
    "hex).",
    "valid: startup must return expected.keys (ids 0, 1, 2) and leave exactly expected.datadir. "
    "invalid: startup must fail with the error code and leave the datadir unchanged "
    "(expected.datadir, START_04).",
    drbg.DESCRIPTION,
    "Labels: passphrases 'crash/old-passphrase' and 'crash/new-passphrase' (64 bytes), internal "
    "keys 'crash/key-N' (64 bytes), IVs 'crash/boot-iv-N' and 'crash/rotation-iv-N' (16 bytes); "
    "the crash model (ordering of lost directory changes, torn writes) is in each group.",
]

# (crash state, how it arose, flags of its origin)
Origin = tuple[CrashState, str, list[str]]


def _add_tests(
    fam: Family, judge: Explorer, kind: str, protocol: str, states: list[Origin]
) -> None:
    """One startup test per (state, configured passphrase), expected outcome from the spec."""
    comment = f"{protocol} protocol: crash states of {kind.replace('_crash', '')}"
    group = fam.group(
        kind,
        comment,
        {
            "protocol": protocol,
            "crashModel": {"ordering": judge.ordering, "torn": judge.torn},
            "oldPassphrase": judge.scenario.old.hex(),
            "newPassphrase": judge.scenario.new.hex(),
            "keys": [k.hex() for k in judge.scenario.keys],
        },
    )
    for state, origin, origin_flags in states:
        datadir = to_json(thaw(state.image))
        for name, passphrase in judge.passphrases.items():
            outcome, _ = judge.startup_outcome(state.image, passphrase)
            flags = [
                *origin_flags,
                *(["TORN_KEY_FILE"] if state.torn else []),
                *(["LOST_ENTRY"] if state.lost else []),
                "CONFIGURED_OLD" if name == "old" else "CONFIGURED_NEW",
                _DECISION_FLAGS[outcome.decision],
            ]
            reqs = ["START_01", *_DECISION_REQS[outcome.decision], "CRASH_08"]
            if any(path.startswith(KEY_TMP_DIR + "/") for path, _, _ in state.image):
                reqs.append("REC_06")
            text = (
                f"{origin}; lost: {'; '.join(state.lost) or 'nothing'}"
                + (f"; torn: {'; '.join(state.torn)}" if state.torn else "")
                + f"; configured: {name} passphrase"
            )
            params = {"datadir": datadir, "passphrase": passphrase.hex()}
            if outcome.error is None:
                assert outcome.keys is not None
                expected = {
                    "keys": [k.hex() for k in outcome.keys],
                    "datadir": to_json(thaw(outcome.image)),
                }
                group.add(
                    "startup",
                    params,
                    comment=text,
                    requirements=reqs,
                    flags=flags,
                    expected=expected,
                )
                continue
            if outcome.image != state.image:
                raise GeneratorError(f"{text}: the spec's failing startup changed the disk")
            group.add(
                "startup",
                params,
                comment=text,
                requirements=[*reqs, "START_04"],
                flags=flags,
                error=outcome.error,
            )
            if group.tests[-1]["expected"]["datadir"] != datadir:
                raise GeneratorError(f"{text}: the reference's failing startup changed the disk")


def _rotation_states(found: dict[Image, Found], protocol: str) -> list[tuple[CrashState, str]]:
    return [
        (f.state, f"{protocol} rotation crashed after {f.crash_point} operation(s) ({f.phase})")
        for f in found.values()
    ]


def build() -> Family:
    fam = Family(name="crash_recovery", header=HEADER, notes=dict(NOTES), triage=dict(TRIAGE))
    fam.group_fields = dict(GROUP_FIELDS)
    judge = Explorer(SPEC)  # expected outcomes always come from the spec's startup
    spec_report = judge.run()
    legacy = Explorer(LEGACY)
    legacy_report = legacy.run()
    seen: set[Image] = set()

    def group(kind: str, protocol: str, states: list[tuple[CrashState, str]]) -> None:
        fresh: list[Origin] = []
        for state, origin in states:
            if state.image in seen:
                continue
            seen.add(state.image)
            flags = ["LEGACY_2020_ONLY"] if protocol == "2020" else []
            if kind == "recovery_crash":
                flags.append("CRASH_DURING_RECOVERY")
            fresh.append((state, origin, flags))
        if fresh:  # else every state already appears in an earlier group
            _add_tests(fam, judge, kind, protocol, fresh)

    def recovery(explorer: Explorer, protocol: str) -> list[tuple[CrashState, str]]:
        reached = sorted(explorer.recovery_states.items())
        return [(state, f"{protocol} {origin}") for _, (state, origin) in reached]

    group("rotation_crash", "spec", _rotation_states(spec_report.states, "spec"))
    group("recovery_crash", "spec", recovery(judge, "spec"))
    group("rotation_crash", "2020", _rotation_states(legacy_report.states, "2020"))
    group("recovery_crash", "2020", recovery(legacy, "2020"))
    return fam
