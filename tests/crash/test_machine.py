"""The transition tables: the code follows them, and the declared crash decisions are exact."""

from __future__ import annotations

import pytest
from pgkms.internal_keys import load_key_set, wrap_key_set
from pgkms.kdf import derive_kek
from pgkms.secret import Secret
from pgkms_conformance.crash.explorer import LEGACY, SPEC, Explorer, Scenario
from pgkms_conformance.crash.legacy import run_procedure
from pgkms_conformance.crash.machine import (
    LEGACY_CRASH_DECISIONS,
    LEGACY_ROTATION,
    SPEC_CRASH_DECISIONS,
    SPEC_ROTATION,
    ProtocolDeviation,
    classify,
    groups,
    match,
)
from pgkms_conformance.crash.simfs import SimFileSystem


@pytest.mark.req("ROT_04", "ROT_05", "ROT_06")
def test_the_reference_rotation_issues_exactly_the_tables_steps() -> None:
    """Run the table through the interpreter and the reference code: identical traces."""
    explorer = Explorer(SPEC)
    reference = explorer.rotation_trace()
    scenario = Scenario()
    fs = SimFileSystem(scenario.initial_image())
    keys = load_key_set(fs, "pgdata/pg_cryptokeys", derive_kek(Secret(scenario.old)))
    records = wrap_key_set(derive_kek(Secret(scenario.new)), keys, scenario.rotation_random())
    run_procedure(fs, "pgdata", SPEC_ROTATION, records)
    assert [op for op in fs.trace if op.mutating] == reference
    assert fs.image() == fs.durable_image()  # a finished spec rotation leaves nothing volatile


def test_match_reports_the_phase_after_each_step() -> None:
    phases = Explorer(SPEC).phases(Explorer(SPEC).rotation_trace())
    assert phases[0] == "tmp_filling"
    assert phases[-1] == "rotated"
    assert sorted(set(phases)) == sorted(SPEC_ROTATION.phases[1:])


def test_a_trace_off_the_table_is_a_protocol_deviation() -> None:
    trace = Explorer(SPEC).rotation_trace()
    events = [classify("pgdata", op.kind, op.path, op.target) for op in trace]
    swapped = [events[0], events[2], events[1], *events[3:]]  # fsync before create
    with pytest.raises(ProtocolDeviation, match="create tmp file: expected 3 rounds, found 0"):
        match(SPEC_ROTATION, swapped)
    with pytest.raises(ProtocolDeviation, match="operation 17: expected fsync_dir datadir"):
        match(SPEC_ROTATION, [*events[:-1], events[0]])
    with pytest.raises(ProtocolDeviation, match="the end of the trace"):
        match(SPEC_ROTATION, events[:-1])
    with pytest.raises(ProtocolDeviation, match="3 rounds, found 2"):
        match(SPEC_ROTATION, [events[0], *events[3:]])
    with pytest.raises(ValueError, match="touches nothing"):
        classify("pgdata", "unlink", "pgdata/global/pg_control")


def test_groups_gather_repeated_steps() -> None:
    shape = [(repeat, len(steps)) for repeat, steps in groups(LEGACY_ROTATION)]
    assert shape == [
        ("once", 1), ("once", 1), ("per_key_file", 2), ("per_entry", 1),
        ("once", 1), ("once", 1), ("once", 1),
    ]  # fmt: skip


@pytest.mark.req("REC_01", "REC_03", "REC_04", "REC_05")
@pytest.mark.parametrize(
    ("protocol", "declared"), [(SPEC, SPEC_CRASH_DECISIONS), (LEGACY, LEGACY_CRASH_DECISIONS)]
)
def test_declared_crash_decisions_are_exactly_what_exploration_finds(protocol, declared) -> None:  # type: ignore[no-untyped-def]
    measured = Explorer(protocol).run().decisions
    assert {phase: frozenset(d) for phase, d in measured.items()} == declared
