"""The crash engine's two parameters: a trace source and a startup runner (and its state cap).

The durability stage drives the same engine with an IUT's replayed trace and the IUT's startup;
these tests drive it with stand-ins whose effect is known."""

from __future__ import annotations

import pytest
from pgkms_conformance.crash.explorer import SPEC, Explorer, StartupRun, Traced
from pgkms_conformance.crash.simfs import SimFileSystem
from pgkms_conformance.image import Image

pytestmark = pytest.mark.req("CRASH_07")


def replayed_reference(explorer: Explorer) -> Traced:
    """The reference rotation's trace as an outside source: no procedure phases."""
    traced = explorer.rotation_in_process()
    return Traced(traced.ops, traced.crashed)


def test_an_outside_trace_and_startup_give_the_in_process_result() -> None:
    default = Explorer(SPEC).run()
    inner = Explorer(SPEC)
    calls: list[tuple[Image, bytes]] = []

    def counting(image: Image, passphrase: bytes) -> StartupRun:
        calls.append((image, passphrase))
        return inner.startup_in_process(image, passphrase)

    outside = Explorer(SPEC, rotation=lambda: replayed_reference(inner), startup=counting)
    report = outside.run()
    assert set(report.states) == set(default.states)
    assert report.violations == default.violations == []
    assert report.depths == default.depths
    assert len(calls) == len(set(calls))  # memoized: each (image, passphrase) asked once
    assert {f.phase for f in report.states.values()} <= {
        f"after {p} operation(s)" for p in range(len(report.trace) + 1)
    }


def test_a_startup_that_returns_other_keys_breaks_i1() -> None:
    inner = Explorer(SPEC)

    def lying(image: Image, passphrase: bytes) -> StartupRun:
        run = inner.startup_in_process(image, passphrase)
        if run.keys is None:
            return run
        return StartupRun(None, tuple(bytes(64) for _ in run.keys), run.image, run.trace)

    report = Explorer(SPEC, startup=lying).run()
    assert report.counts()["I1"] == len(report.states)


def test_a_startup_whose_crash_loses_the_keys_breaks_i3() -> None:
    inner = Explorer(SPEC)

    def fragile(image: Image, passphrase: bytes) -> StartupRun:
        run = inner.startup_in_process(image, passphrase)
        if not run.trace.ops:
            return run

        def crashed(point: int) -> SimFileSystem:
            return SimFileSystem((), inner.scenario.datadir)  # the crash wiped the directory

        return StartupRun(run.error, run.keys, run.image, Traced(run.trace.ops, crashed))

    assert Explorer(SPEC, startup=fragile).run().counts()["I3"] > 0


def test_the_state_cap_stops_the_collection_and_says_so() -> None:
    capped = Explorer(SPEC, state_cap=5).run()
    assert capped.capped and len(capped.states) == 5
    whole = Explorer(SPEC).run()
    assert not whole.capped and len(whole.states) == 39
    assert list(capped.states) == list(whole.states)[:5]
