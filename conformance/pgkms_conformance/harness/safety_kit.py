"""What the safety checks share: a spare IUT whose hangs cost a restart of the spare (never of
the run's session), the key set every check starts from, and the case builder.

The template key set is made once by the IUT's own ``bootstrap`` and copied into every fresh data
directory: each check judges the IUT on files it wrote itself, without paying a bootstrap per
check.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pgkms_conformance.harness.checks import Context
from pgkms_conformance.harness.hostile_fs import KD, SafeWorkspace, copy_tree
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.oracle import Answer, Json
from pgkms_conformance.harness.procs import SpareIut
from pgkms_conformance.harness.scenarios import Secrets
from pgkms_conformance.protocol.client import AdapterFailure

STAGE: Final = "safety"
START_BOUND: Final = 10.0  # seconds a spare IUT may take to answer hello


def case(
    name: str,
    verdict: Verdict,
    reqs: tuple[str, ...],
    check: str,
    *,
    expected: str = "",
    found: str = "",
    detail: str = "",
    stage: str = STAGE,
    **source: object,
) -> Case:
    return Case(stage, name, verdict, reqs, {"check": check, **source}, expected, found, detail)


@dataclass
class Timed:
    """An answer (or the protocol failure instead of one) and how long it took."""

    answer: Answer | None
    seconds: float
    failure: AdapterFailure | None = None

    def describe(self) -> str:
        if self.answer is not None:
            return f"{self.answer.summary()} after {self.seconds:.2f} s"
        assert self.failure is not None
        return f"no answer ({self.failure.kind}: {self.failure.message})"

    @property
    def code(self) -> str | None:
        return self.answer.code if self.answer is not None else None

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.answer.ok


@dataclass
class Kit:
    ctx: Context
    command: list[str]
    ws: SafeWorkspace
    secrets: Secrets
    template: Path | None = None  # a data directory holding the IUT's bootstrapped key set
    original_keys: list[str] = field(default_factory=list)
    fault_mode: str = "quick"  # syscall fault injection: quick, full or off (faults.py)
    not_ready: str = ""  # why there is no template (then the checks needing one are unsupported)
    _spare: SpareIut | None = None

    @property
    def caps(self) -> frozenset[str]:
        return self.ctx.session.capabilities

    # -- the spare IUT --
    def spare(self) -> SpareIut:
        if self._spare is None:
            spare = SpareIut(self.command, START_BOUND)
            try:
                spare.start()
            except AdapterFailure:
                spare.close()
                raise
            self._spare = spare
        return self._spare

    def drop_spare(self) -> None:
        if self._spare is not None:
            self._spare.close()
            self._spare = None

    def ask(self, op: str, params: Json, within: float, spare: SpareIut | None = None) -> Timed:
        """One request, answered within ``within`` seconds or recorded as a failure (the spare
        is then replaced, so a hang or crash costs only that request)."""
        self.ctx.redactor.add_json(params)
        t0 = time.monotonic()
        try:
            target = spare or self.spare()
            t0 = time.monotonic()  # the request's time, not the spare's start
            target.client.timeout = within
            answer = Answer.from_response(target.client.call(op, **params))
        except AdapterFailure as exc:
            if spare is None:
                self.drop_spare()
            return Timed(None, time.monotonic() - t0, exc)
        self.ctx.redactor.add_json(answer.result)
        self.ctx.progress.tick()
        return Timed(answer, time.monotonic() - t0)

    # -- data directories --
    def prepare(self) -> None:
        """Bootstrap the template with the IUT and learn the original internal keys."""
        missing = [op for op in ("bootstrap", "startup") if op not in self.caps]
        if missing:
            self.not_ready = f"the IUT does not claim {', '.join(missing)}"
            return
        template = self.ws.fresh("template")
        a = self.secrets.a.hex()
        boot = self.ask("bootstrap", {"datadir": str(template), "passphrase": a}, 30.0)
        if not boot.ok:
            self.not_ready = f"the IUT's bootstrap failed: {boot.describe()}"
            return
        self.template = template
        probe = self.fresh()
        start = self.ask("startup", {"datadir": str(probe), "passphrase": a}, 30.0)
        if not start.ok or start.answer is None:
            self.template = None
            self.not_ready = f"the IUT's startup of its own key set failed: {start.describe()}"
            return
        self.original_keys = [str(k) for k in start.answer.result.get("keys", [])]

    def fresh(self, with_keys: bool = True) -> Path:
        """A new data directory, holding a copy of the template's key set unless told not to."""
        d = self.ws.fresh()
        if with_keys and self.template is not None:
            copy_tree(self.template / KD, d / KD)
        return d

    def unsupported(self, name: str, reqs: tuple[str, ...], check: str, why: str) -> Case:
        return case(name, Verdict.UNSUPPORTED, reqs, check, detail=why)

    def fork(self) -> Kit:
        """The same kit with a spare IUT of its own, for a check run in a thread."""
        return dataclasses.replace(self, _spare=None)

    def close(self) -> None:
        self.drop_spare()
        self.ws.close()


Job = Callable[[Kit], list[Case]]


def in_parallel(kit: Kit, jobs: Sequence[Job]) -> list[Case]:
    """Run checks that mostly wait (a held lock, a command's timeout) at once, each with a
    spare IUT of its own; their cases in the order of ``jobs``. A harness error is re-raised."""
    results: list[list[Case]] = [[] for _ in jobs]
    errors: list[BaseException] = []

    def run(index: int, job: Job) -> None:
        fork = kit.fork()
        try:
            results[index] = job(fork)
        except BaseException as exc:  # re-raised below, in the stage's own thread
            errors.append(exc)
        finally:
            fork.drop_spare()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [c for cases in results for c in cases]


def opens_original(kit: Kit, datadir: Path, passphrase: bytes) -> tuple[bool, str]:
    """Does startup under ``passphrase`` return the original internal keys? (and what it said)"""
    t = kit.ask("startup", {"datadir": str(datadir), "passphrase": passphrase.hex()}, 30.0)
    if t.answer is None or not t.answer.ok:
        return False, f"startup: {t.describe()}"
    if [str(k) for k in t.answer.result.get("keys", [])] != kit.original_keys:
        return False, "startup opened other internal keys than the original ones"
    return True, "startup opened the original internal keys"
