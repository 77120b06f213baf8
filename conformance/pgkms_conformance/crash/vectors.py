"""Crash-recovery test vectors: every distinct crash state of both protocols (VEC, CRASH_08).

Each test gives a data directory as a listing, the passphrase configured at startup, and what a
conforming startup (which recovers first) must end with: the three internal keys and the final
listing, or an error code with the directory left unchanged (START_04). The expected outcome is
always the spec's, also for states only the 2020 protocol can reach (flag ``Legacy2020Only``):
a conforming implementation must recover safely from a disk the patch left behind.

Everything is derived from a fixed seed (SHAKE-128 of ``pgkms-vectors/v1/`` and a label), so
``crash_vectors()`` returns the same document, byte for byte once dumped, on every run.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pgkms.layout import KEY_TMP_DIR

from pgkms_conformance.crash.explorer import LEGACY, SPEC, Explorer, Found
from pgkms_conformance.crash.simfs import CrashState, Image
from pgkms_conformance.vectors import triage
from pgkms_conformance.vectors.canonical import vector_id

SCHEMA: Final = "pgkms_crash_recovery_schema.json"

NOTES: Final = {
    "Legacy2020Only": "Only the 2020 protocol (no fsync of PGDATA, recovery by counting files) "
    "can leave this state; a conforming implementation must still recover from it safely.",
    "CrashDuringRecovery": "The state a crash leaves part-way through recovery itself; recovery "
    "must handle it again with the same outcome (REC_06).",
    "TornKeyFile": "A key file whose data was not yet fsynced came back zero-length, half "
    "written or zero-filled (CRASH_04).",
    "LostEntry": "A directory change (create, unlink, rmdir, rename) that was not yet fsynced "
    "was lost (CRASH_03).",
    "ConfiguredOld": "Startup runs with the passphrase in force before the rotation.",
    "ConfiguredNew": "Startup runs with the passphrase the rotation was switching to.",
    "RecoveryNothing": "No pg_cryptokeys_tmp: recovery does nothing (REC_01).",
    "RecoveryDiscardTmp": "pg_cryptokeys is valid: recovery removes pg_cryptokeys_tmp (REC_03).",
    "RecoveryAdoptTmp": "Only pg_cryptokeys_tmp is valid: recovery puts it in place (REC_04).",
    "RecoveryFails": "Neither directory is valid: startup fails, nothing changes (REC_05).",
}

# flag -> its bug type and the effect of failing it (``pgkms_conformance.vectors.triage``).
TRIAGE: Final = {
    "Legacy2020Only": ("LEGACY", "cannot recover safely from a state only the 2020 protocol left"),
    "CrashDuringRecovery": (
        "KEY_LOSS",
        "a recovery interrupted by a crash ends otherwise than the first: keys lost or replaced",
    ),
    "TornKeyFile": (
        "KEY_LOSS",
        "takes a torn key file for a valid one, or discards the valid key set because of it",
    ),
    "LostEntry": (
        "KEY_LOSS",
        "misreads a directory change the crash lost and loses or replaces the keys",
    ),
    "ConfiguredOld": ("KEY_LOSS", "starts with another key set than the old passphrase opens"),
    "ConfiguredNew": ("KEY_LOSS", "starts with another key set than the new passphrase opens"),
    "RecoveryNothing": ("KEY_LOSS", "changes a key directory that needed no recovery"),
    "RecoveryDiscardTmp": (
        "KEY_LOSS",
        "keeps or adopts pg_cryptokeys_tmp instead of the valid pg_cryptokeys",
    ),
    "RecoveryAdoptTmp": ("KEY_LOSS", "fails to adopt pg_cryptokeys_tmp, the only valid key set"),
    "RecoveryFails": ("KEY_LOSS", "starts, or changes the disk, when no key set opens"),
}

_DECISION_FLAGS: Final = {
    "nothing": "RecoveryNothing",
    "discard_tmp": "RecoveryDiscardTmp",
    "adopt_tmp": "RecoveryAdoptTmp",
    "fail": "RecoveryFails",
}
_DECISION_REQS: Final = {
    "nothing": ["REC_01"],
    "discard_tmp": ["REC_02", "REC_03"],
    "adopt_tmp": ["REC_02", "REC_04"],
    "fail": ["REC_02", "REC_05"],
}


def listing(image: Image) -> dict[str, dict[str, Any]]:
    """A disk image as the vector format's datadir listing."""
    out: dict[str, dict[str, Any]] = {}
    for path, mode, content in image:
        out[path] = {"mode": mode} if content is None else {"mode": mode, "content": content.hex()}
    return out


def test_id(inputs: dict[str, Any], op: str) -> str:
    """The vector format's test id (one definition for every file: ``vector_id``)."""
    return vector_id(op, inputs)


def _tests(
    explorer: Explorer,
    states: list[tuple[CrashState, str, list[str]]],
) -> list[dict[str, Any]]:
    """One startup test per (state, configured passphrase), expected outcome from the spec."""
    tests: list[dict[str, Any]] = []
    for state, origin, extra_flags in states:
        for name, passphrase in explorer.passphrases.items():
            outcome, _ = explorer.startup_outcome(state.image, passphrase)
            inputs = {"datadir": listing(state.image), "passphrase": passphrase.hex()}
            flags = [
                *extra_flags,
                *(["TornKeyFile"] if state.torn else []),
                *(["LostEntry"] if state.lost else []),
                "ConfiguredOld" if name == "old" else "ConfiguredNew",
                _DECISION_FLAGS[outcome.decision],
            ]
            reqs = ["START_01", *_DECISION_REQS[outcome.decision], "CRASH_08"]
            if any(path.startswith(KEY_TMP_DIR + "/") for path, _, _ in state.image):
                reqs.append("REC_06")
            comment = (
                f"{origin}; lost: {'; '.join(state.lost) or 'nothing'}"
                + (f"; torn: {'; '.join(state.torn)}" if state.torn else "")
                + f"; configured: {name} passphrase"
            )
            test: dict[str, Any] = {
                "tcId": 0,
                "id": test_id(inputs, "startup"),
                "comment": comment,
                "flags": flags,
                "requirements": sorted(set(reqs)),
                "op": "startup",
                "input": inputs,
            }
            if outcome.error is None:
                assert outcome.keys is not None
                test["result"] = "valid"
                test["expected"] = {
                    "keys": [k.hex() for k in outcome.keys],
                    "datadir": listing(outcome.image),
                }
            else:
                test["result"] = "invalid"
                test["error"] = outcome.error
                reqs.append("START_04")
                test["requirements"] = sorted(set(reqs))
            tests.append(test)
    return tests


def _rotation_states(found: dict[Image, Found], protocol: str) -> list[tuple[CrashState, str]]:
    return [
        (f.state, f"{protocol} rotation crashed after {f.crash_point} operation(s) ({f.phase})")
        for f in found.values()
    ]


def crash_vectors() -> dict[str, Any]:
    """The crash-recovery vector document (``vectors/crash_recovery.json``)."""
    judge = Explorer(SPEC)  # expected outcomes always come from the spec's startup
    spec_report = judge.run()
    legacy_explorer = Explorer(LEGACY)
    legacy_report = legacy_explorer.run()

    seen: set[Image] = set()
    groups: list[dict[str, Any]] = []

    def group(kind: str, protocol: str, states: list[tuple[CrashState, str]]) -> None:
        fresh = []
        for state, origin in states:
            if state.image in seen:
                continue
            seen.add(state.image)
            flags = ["Legacy2020Only"] if protocol == "2020" else []
            if kind == "recovery_crash":
                flags.append("CrashDuringRecovery")
            fresh.append((state, origin, flags))
        if not fresh:
            return  # every state already appears in an earlier group
        groups.append(
            {
                "type": kind,
                "protocol": protocol,
                "crashModel": {"ordering": judge.ordering, "torn": judge.torn},
                "oldPassphrase": judge.scenario.old.hex(),
                "newPassphrase": judge.scenario.new.hex(),
                "keys": [k.hex() for k in judge.scenario.keys],
                "tests": _tests(judge, fresh),
            }
        )

    group("rotation_crash", "spec", _rotation_states(spec_report.states, "spec"))
    group(
        "recovery_crash",
        "spec",
        [(s, f"spec {origin}") for _, (s, origin) in sorted(judge.recovery_states.items())],
    )
    group("rotation_crash", "2020", _rotation_states(legacy_report.states, "2020"))
    group(
        "recovery_crash",
        "2020",
        [
            (s, f"2020 {origin}")
            for _, (s, origin) in sorted(legacy_explorer.recovery_states.items())
        ],
    )
    tc_id = 0
    for g in groups:
        for test in g["tests"]:
            tc_id += 1
            test["tcId"] = tc_id
    return {
        "schema": SCHEMA,
        "version": "1",
        "family": "crash_recovery",
        "numberOfTests": tc_id,
        "header": [
            "Disk states a crash during passphrase rotation, or during recovery, can leave "
            "(spec: Crash model). Each test runs startup, which recovers first, with the "
            "configured passphrase on the datadir listing (paths relative to PGDATA; "
            "directories end in '/'; file contents in hex; modes informative).",
            "valid: startup must return expected.keys (ids 0, 1, 2) and leave exactly "
            "expected.datadir. invalid: startup must fail with the error code and leave the "
            "datadir unchanged (START_04).",
            "Passphrases, keys and IVs are SHAKE-128('pgkms-vectors/v1/crash/...'); the crash "
            "model (ordering of lost directory changes, torn writes) is in each group.",
        ],
        "notes": {flag: triage.note(*TRIAGE[flag], text) for flag, text in NOTES.items()},
        "testGroups": groups,
    }


def dump(document: dict[str, Any]) -> str:
    """The document as the bytes written to ``vectors/crash_recovery.json``."""
    return json.dumps(document, indent=1, ensure_ascii=True) + "\n"
