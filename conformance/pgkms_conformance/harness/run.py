"""The orchestrator: start the IUT, run the stages in order, always clean up, return a Report."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pgkms_conformance.harness.checks import Context, adapter_failure_case
from pgkms_conformance.harness.concurrency import DEFAULT_ROUNDS, run_concurrency
from pgkms_conformance.harness.durability import run_durability
from pgkms_conformance.harness.model import Case, Report, StageSummary, Verdict
from pgkms_conformance.harness.oracle import Request
from pgkms_conformance.harness.progress import Progress
from pgkms_conformance.harness.properties import PROPERTIES, Property, run_property
from pgkms_conformance.harness.protocol_stage import run_protocol
from pgkms_conformance.harness.redact import Redactor
from pgkms_conformance.harness.replay import ReplayWriter
from pgkms_conformance.harness.safety import judges as safety_judges
from pgkms_conformance.harness.safety import run_safety
from pgkms_conformance.harness.scenarios import drbg, run_scenarios
from pgkms_conformance.harness.session import IutSession, RunAborted
from pgkms_conformance.harness.syscalls import SyscallSource
from pgkms_conformance.harness.syscalls import probe as probe_syscall_tracing
from pgkms_conformance.harness.vector_stage import cites, load_vectors, run_vectors
from pgkms_conformance.protocol.client import AdapterFailure
from pgkms_conformance.vectors.runner import Json

STAGES = ("protocol", "vectors", "properties", "scenarios", "durability", "safety", "concurrency")


@dataclass
class Config:
    command: list[str]
    vector_paths: list[Path] = field(default_factory=list)
    examples: int = 100
    seed: int = 0
    timeout: float = 10.0
    replay_dir: str | None = None
    stages: tuple[str, ...] = STAGES
    max_failures: int = 3
    concurrency_rounds: int = DEFAULT_ROUNDS
    fault_injection: str = "quick"  # the safety stage's strace injections: quick, full, off
    trace_syscalls: bool = False  # durability judged from the IUT's system calls (strace)
    # A requirement whose checks run first where the harness knows which judge it (the safety
    # stage's, ``stage_order``): the mutant zoo's, which ends a run at the first failure charged
    # to the mutant's rule.
    first: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "examples": self.examples,
            "seed": self.seed,
            "timeout": self.timeout,
            "stages": list(self.stages),
            "concurrency_rounds": self.concurrency_rounds,
            "fault_injection": self.fault_injection,
            "trace_syscalls": self.trace_syscalls,
            "first": self.first,
            "vectors": [str(p) for p in self.vector_paths],
        }


def run_harness(
    config: Config,
    progress: Progress | None = None,
    stop_when: Callable[[Case], bool] | None = None,
) -> Report:
    """Run everything; a bad ``--vectors`` file raises VectorFileError before the IUT starts.

    ``stop_when``: the run ends after the first case it is true of (the mutant zoo stops a
    mutant at its first failure charged to the rule it breaks); the report holds the cases
    run so far.
    """
    progress = progress or Progress(enabled=False)
    files = load_vectors(config.vector_paths) if "vectors" in config.stages else []
    report = Report(
        iut_command=list(config.command),
        config=config.as_json(),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    redactor = Redactor()
    session = IutSession(config.command, config.timeout, redactor, config.max_failures)
    replays = ReplayWriter(config.replay_dir)
    started = time.monotonic()
    ctx: Context | None = None
    try:
        hello = session.start()
        report.implementation, report.version = hello.implementation, hello.version
        report.capabilities = sorted(hello.capabilities)
        ctx = Context(session, redactor, progress, replays, config.seed, config.examples)
        if config.trace_syscalls and "durability" in config.stages:
            ctx.syscalls_unavailable = probe_syscall_tracing()
            if ctx.syscalls_unavailable is None:
                ctx.syscalls = SyscallSource(config.command, config.timeout, redactor)
            else:
                print(f"syscall tracing unavailable: {ctx.syscalls_unavailable}", file=sys.stderr)
        focus = _vector_focus(config.first)
        stages: dict[str, Callable[[], Iterable[Case]]] = {
            "protocol": lambda: run_protocol(ctx),
            "vectors": lambda: run_vectors(ctx, files, _vectors_now(focus)),
            VECTORS_REST: lambda: run_vectors(ctx, files, _vectors_later(focus)),
            "properties": lambda: run_properties(ctx),
            "scenarios": lambda: run_scenarios(ctx),
            "durability": lambda: run_durability(ctx),
            "safety": lambda: run_safety(ctx, config.fault_injection, config.first),
            "concurrency": lambda: run_concurrency(ctx, config.concurrency_rounds),
        }
        for name in stage_order(config.stages, config.first):
            if session.aborted is not None:
                break
            shown = "vectors" if name == VECTORS_REST else name
            progress.begin(shown)
            t0 = time.monotonic()
            cases, stopped = _run_stage(stages[name](), stop_when)
            report.cases += cases
            report.stages.append(
                StageSummary(shown, time.monotonic() - t0, Counter(c.verdict for c in cases))
            )
            if stopped:
                break
    except RunAborted:
        pass
    finally:
        session.close()
        if ctx is not None and ctx.syscalls is not None:
            ctx.syscalls.close()
        progress.done()
    report.aborted = session.aborted
    report.duration_s = time.monotonic() - started
    report.replay_dir = str(replays.directory) if replays.directory else None
    return report


# A focused run's second part of the vector stage (``stage_order``), reported as "vectors".
VECTORS_REST = "vectors, the rest"


def stage_order(stages: Iterable[str], first: str | None) -> list[str]:
    """``stages`` in their order, or, for a focused run (``first``: the mutant zoo's), an order
    that reaches the checks of that rule sooner, so the run stops sooner at its failure:

    * the safety stage right after the protocol stage when its checks judge the rule (its
      ``JUDGES``);
    * the vector stage split in two: in its place only the vectors that cite the rule, and the
      others (``VECTORS_REST``, thousands of requests) after every other stage. Not for ADP_01,
      to which every stage charges protocol failures and whose pipelining faults the
      accumulated vector shows first.

    Every check still runs until the run stops, so a failure is never missed, only met later.
    Protocol robustness stays first: an IUT that breaks there is judged by it.
    """
    order = list(stages)
    if first is None:
        return order
    if "vectors" in order and _vector_focus(first) is not None:
        order.append(VECTORS_REST)
    if "safety" in order and safety_judges(first):
        order.remove("safety")
        at = 1 if order[:1] == ["protocol"] else 0
        order.insert(at, "safety")
    return order


def _vector_focus(first: str | None) -> str | None:
    """The rule a focused run splits the vector stage on (``stage_order``): ``first``, but for
    ADP_01, which every stage charges protocol failures to; None in a normal run."""
    return None if first == "ADP_01" else first


def _vectors_now(focus: str | None) -> Callable[[Json], bool] | None:
    """The vector tests run in the vector stage's place: those citing ``focus``, or all."""
    return None if focus is None else cites(focus)


def _vectors_later(focus: str | None) -> Callable[[Json], bool]:
    """The others, run after every other stage (``VECTORS_REST``: only in a focused run)."""
    now = _vectors_now(focus)
    return lambda test: now is not None and not now(test)


def _run_stage(
    cases: Iterable[Case], stop_when: Callable[[Case], bool] | None
) -> tuple[list[Case], bool]:
    """The stage's cases, up to the first one ``stop_when`` is true of; and whether it was."""
    if stop_when is None:
        return list(cases), False
    done: list[Case] = []
    iterator = iter(cases)
    for case in iterator:
        done.append(case)
        if stop_when(case):
            if isinstance(iterator, Generator):
                iterator.close()  # the stage's clean-up (temporary directories, IUTs) runs now
            return done, True
    return done, False


# -- the property stage ------------------------------------------------------------------------
def run_properties(ctx: Context) -> Iterator[Case]:
    yield from fresh_ivs(ctx)
    for index, prop in enumerate(PROPERTIES):
        if ctx.session.aborted is not None:
            return
        missing = [n for n in prop.needs if n not in ctx.session.capabilities]
        source = {"property": prop.name, "description": prop.description, "seed": ctx.seed}
        name = f"property {prop.name}"
        if missing:
            yield Case("properties", name, Verdict.UNSUPPORTED, prop.requirements, source)
            continue
        yield _property_case(ctx, prop, name, source, ctx.seed + index)
    if ctx.error_answers:
        # Each error answer was checked on the spot; a leak is a failed case of its own.
        check = f"{ctx.error_answers} error messages checked for the request's secrets"
        yield Case(
            "properties",
            "no secret in error messages",
            Verdict.PASSED,
            ("ERR_02",),
            {"check": check},
        )


def _property_case(
    ctx: Context, prop: Property, name: str, source: dict[str, object], seed: int
) -> Case:
    outcome = run_property(ctx, prop, ctx.examples, seed)
    source = {**source, "examples": outcome.examples_run}
    if outcome.adapter_failure is not None:
        params = outcome.failing_params or {}
        replay = ctx.replays.requests(name, [Request(prop.needs[0], params)])
        return adapter_failure_case(
            ctx,
            "properties",
            name,
            prop.requirements,
            source,
            exc=outcome.adapter_failure,
            replay=replay,
        )
    if outcome.mismatch is not None:
        m = outcome.mismatch
        ctx.progress.failed()
        return Case(
            "properties",
            name,
            Verdict.FAILED,
            m.requirements,
            source,
            expected=m.expected,
            found=m.found,
            detail=m.detail or "shrunk example; replay it with the file below",
            replay=ctx.replays.requests(name, m.requests),
        )
    if outcome.error is not None:
        ctx.progress.failed()
        return Case(
            "properties",
            name,
            Verdict.FAILED,
            prop.requirements,
            source,
            expected="the same answer each time a request is repeated",
            found=f"inconsistent answers ({outcome.error})",
        )
    return Case("properties", name, Verdict.PASSED, prop.requirements, source)


def fresh_ivs(ctx: Context) -> Iterator[Case]:
    """WRAP_03: two wraps of the same value, the IUT choosing the IV, must differ in the IV."""
    for op, keys in (
        (
            "wrap",
            {
                "enc_key": drbg(ctx.seed, "enc", 32).hex(),
                "mac_key": drbg(ctx.seed, "mac", 32).hex(),
            },
        ),
        ("sql_wrap", {"sql_key": drbg(ctx.seed, "sql", 64).hex()}),
    ):
        name = f"fresh IV per {op}"
        source = {"check": name}
        if op not in ctx.session.capabilities:
            yield Case("properties", name, Verdict.UNSUPPORTED, ("WRAP_03",), source)
            continue
        params = {**keys, "plaintext": drbg(ctx.seed, "iv check", 20).hex()}
        try:
            ivs = set()
            for _ in range(3):
                answer = ctx.ask(op, params)
                wrapped = str(answer.result.get("wrapped", "")) if answer.ok else ""
                ivs.add(wrapped[64:96])
        except AdapterFailure as exc:
            ctx.session.recover_from(exc)
            yield adapter_failure_case(ctx, "properties", name, ("WRAP_03",), source, exc=exc)
            continue
        except RunAborted:
            return
        if len(ivs) == 3 and "" not in ivs:
            yield Case("properties", name, Verdict.PASSED, ("WRAP_03",), source)
        else:
            ctx.progress.failed()
            yield Case(
                "properties",
                name,
                Verdict.FAILED,
                ("WRAP_03",),
                source,
                expected="three different IVs for three wraps",
                found=f"{len(ivs - {''})} different IV(s)",
                replay=ctx.replays.requests(name, [Request(op, params)] * 3),
            )
