"""Stage "concurrency" and the stress command: several adapter processes of the IUT on one data
directory at once (CONC_01, capability ``concurrency``).

Each round releases 2 to K processes together (a seeded schedule: how many, and which procedure
each runs: a rotation A->B or B->A, a startup or a recovery under A or B). After the round the
invariants are checked with a normal request: exactly one of the two passphrases opens the key
set, to the ORIGINAL internal keys (nothing lost, nothing replaced), and every procedure answered
either success or one of the codes concurrency may legitimately cause (``wrong_passphrase``: a
rotation or startup that came after another rotation; ``key_directory_locked``). Anything else
is a violation charged to CONC_01, naming the round and its schedule. A round that lost the keys
is counted and the directory rebuilt from the IUT's own key set, so later rounds still measure.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from pgkms_conformance.harness.checks import Context
from pgkms_conformance.harness.hostile_fs import KD, SafeWorkspace, copy_tree, remove_tree
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.oracle import Answer, Json
from pgkms_conformance.harness.procs import SpareIut
from pgkms_conformance.harness.redact import Redactor
from pgkms_conformance.harness.scenarios import Secrets
from pgkms_conformance.protocol.client import AdapterFailure

STAGE: Final = "concurrency"
DEFAULT_ROUNDS: Final = 10
MIN_PROCS: Final = 2
MAX_PROCS: Final = 8
LOCK_TIMEOUT: Final = 30.0  # generous: a queue of eight procedures must not time out
REQUEST_BOUND: Final = 60.0
ALLOWED: Final = frozenset({"wrong_passphrase", "key_directory_locked"})
NEEDS: Final = ("concurrency", "bootstrap", "startup", "rotate", "recover")


@dataclass(frozen=True)
class Task:
    op: str  # rotate | startup | recover
    label: str  # which passphrase, "A" or "B": the old one for a rotation

    def __str__(self) -> str:
        if self.op == "rotate":
            return f"rotate {self.label}->{'B' if self.label == 'A' else 'A'}"
        return f"{self.op} {self.label}"


@dataclass
class RoundResult:
    index: int
    schedule: tuple[Task, ...]
    answers: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    lost: bool = False

    def describe_schedule(self) -> str:
        return ", ".join(map(str, self.schedule))


@dataclass
class StressResult:
    rounds: list[RoundResult] = field(default_factory=list)
    seconds: float = 0.0
    setup_error: str | None = None
    stopped_by_time: bool = False

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rounds)

    @property
    def violations(self) -> int:
        return sum(len(r.violations) for r in self.rounds)


def schedule(seed: int, index: int, max_procs: int) -> tuple[Task, ...]:
    """The round's procedures, from the seed alone (so a failing round can be re-run)."""
    rng = random.Random(f"pgkms-concurrency/{seed}/{index}")  # noqa: S311  (a schedule, no secret)
    n = rng.randint(MIN_PROCS, max(MIN_PROCS, max_procs))
    ops = ("rotate", "rotate", "startup", "recover")
    return tuple(Task(rng.choice(ops), rng.choice("AB")) for _ in range(n))


class Stress:
    """The IUT's processes, the shared data directory and the rounds."""

    def __init__(
        self, command: list[str], seed: int, max_procs: int, redactor: Redactor | None = None
    ) -> None:
        self.command = command
        self.seed = seed
        self.max_procs = max(MIN_PROCS, max_procs)
        self.secrets = Secrets.derive(seed)
        self.redactor = redactor if redactor is not None else Redactor()
        # On the disk: its slower file operations open the race windows (``scratch``).
        self.ws = SafeWorkspace("pgkms-concurrency-", in_memory=False)
        self.procs: list[SpareIut | None] = []
        self.datadir = self.ws.fresh("shared")
        self.backup = self.ws.fresh("backup")
        self.original: list[str] = []

    def _pass(self, label: str) -> str:
        return (self.secrets.a if label == "A" else self.secrets.b).hex()

    def _proc(self, i: int) -> SpareIut:
        """Process ``i``, restarted if an earlier request left it dead."""
        while len(self.procs) <= i:
            self.procs.append(None)
        proc = self.procs[i]
        if proc is None:
            proc = self.procs[i] = self._start()
        return proc

    def _start(self) -> SpareIut:
        spare = SpareIut(self.command, REQUEST_BOUND)
        try:
            spare.start()
        except AdapterFailure:
            spare.close()
            raise
        return spare

    def ask(self, i: int, op: str, params: Json) -> Answer | AdapterFailure:
        self.redactor.add_json(params)
        try:
            answer = Answer.from_response(self._proc(i).client.call(op, **params))
        except AdapterFailure as exc:
            proc = self.procs[i] if i < len(self.procs) else None
            if proc is not None:
                proc.close()
                self.procs[i] = None  # restarted on next use
            return exc
        self.redactor.add_json(answer.result)
        return answer

    def setup(self) -> str | None:
        """Bootstrap the shared directory with the IUT; the original keys; None or why not."""
        boot = self.ask(
            0, "bootstrap", {"datadir": str(self.datadir), "passphrase": self._pass("A")}
        )
        if not isinstance(boot, Answer) or not boot.ok:
            return f"the IUT's bootstrap failed: {_describe(boot)}"
        copy_tree(self.datadir / KD, self.backup / KD)
        opened = self._opens()
        if opened is None:
            return "the IUT's startup could not open its own key set"
        self.original = opened[1]
        return None

    def _opens(self) -> tuple[str, list[str]] | None:
        """Which passphrase opens the shared directory, and to which keys (None: neither)."""
        for label in ("A", "B"):
            params = {"datadir": str(self.datadir), "passphrase": self._pass(label)}
            answer = self.ask(0, "startup", params)
            if isinstance(answer, Answer) and answer.ok:
                return label, [str(k) for k in answer.result.get("keys", [])]
        return None

    def _params(self, task: Task) -> Json:
        params: Json = {"datadir": str(self.datadir), "lock_timeout": LOCK_TIMEOUT}
        if task.op == "rotate":
            other = "B" if task.label == "A" else "A"
            return params | {
                "old_passphrase": self._pass(task.label),
                "new_passphrase": self._pass(other),
            }
        return params | {"passphrase": self._pass(task.label)}

    def round(self, index: int) -> RoundResult:
        tasks = schedule(self.seed, index, self.max_procs)
        result = RoundResult(index, tasks)
        for i in range(len(tasks)):
            with contextlib.suppress(AdapterFailure):  # the request below reports it
                self._proc(i)  # started before the barrier: the procedures race, not the starts
        gate = threading.Barrier(len(tasks))
        answers: list[Answer | AdapterFailure | None] = [None] * len(tasks)

        def work(i: int) -> None:
            params = self._params(tasks[i])
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait(timeout=REQUEST_BOUND)
            answers[i] = self.ask(i, tasks[i].op, params)

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(tasks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=REQUEST_BOUND + 5)
        for task, answer in zip(tasks, answers, strict=True):
            text = _describe(answer)
            result.answers.append(f"{task}: {text}")
            if not (isinstance(answer, Answer) and (answer.ok or answer.code in ALLOWED)):
                result.violations.append(f"{task} answered {text}")
        opened = self._opens()
        if opened is None:
            result.lost = True
            result.violations.append("neither passphrase A nor B opens the key set any more")
            self._rebuild()
        elif opened[1] != self.original:
            result.lost = True
            result.violations.append(f"passphrase {opened[0]} opens other internal keys")
            self._rebuild()
        return result

    def _rebuild(self) -> None:
        remove_tree(self.datadir)
        self.datadir.mkdir(mode=0o700)
        copy_tree(self.backup / KD, self.datadir / KD)

    def close(self) -> None:
        for proc in self.procs:
            if proc is not None:
                proc.close()
        self.ws.close()


def _describe(answer: Answer | AdapterFailure | None) -> str:
    if answer is None:
        return "no answer (the request did not return)"
    if isinstance(answer, AdapterFailure):
        return f"no answer ({answer.kind}: {answer.message})"
    return answer.summary() if answer.ok else f"error {answer.code}"


def run_rounds(
    command: list[str],
    *,
    rounds: int,
    max_procs: int,
    seed: int,
    time_limit: float | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    redactor: Redactor | None = None,
) -> StressResult:
    stress = Stress(command, seed, max_procs, redactor)
    result = StressResult()
    t0 = time.monotonic()
    try:
        result.setup_error = stress.setup()
        if result.setup_error is None:
            for index in range(rounds):
                if time_limit is not None and time.monotonic() - t0 > time_limit:
                    result.stopped_by_time = True
                    break
                result.rounds.append(stress.round(index))
                if on_round:
                    on_round(result.rounds[-1])
    finally:
        stress.close()
        result.seconds = time.monotonic() - t0
    return result


def run_concurrency(ctx: Context, rounds: int = DEFAULT_ROUNDS) -> Iterator[Case]:
    check = "several adapter processes of the IUT on one data directory"
    name = f"{rounds} rounds of {MIN_PROCS} to {MAX_PROCS} concurrent procedures"
    missing = [c for c in NEEDS if c not in ctx.session.capabilities]
    if missing:
        yield Case(
            STAGE,
            name,
            Verdict.UNSUPPORTED,
            ("CONC_01",),
            {"check": check},
            detail=f"the IUT does not claim {', '.join(missing)}",
        )
        return
    result = run_rounds(
        list(ctx.session.command),
        rounds=rounds,
        max_procs=MAX_PROCS,
        seed=ctx.seed,
        on_round=lambda _: ctx.progress.tick(),
        redactor=ctx.redactor,
    )
    source = {"check": check, "seed": ctx.seed}
    if result.setup_error is not None:
        ctx.progress.failed()
        yield Case(
            STAGE,
            name,
            Verdict.FAILED,
            ("CONC_01",),
            source,
            expected="a key set to share",
            found=result.setup_error,
        )
        return
    for r in result.rounds:
        if r.violations:
            ctx.progress.failed()
            yield Case(
                STAGE,
                f"round {r.index}",
                Verdict.FAILED,
                ("CONC_01",),
                {**source, "round": r.index, "schedule": r.describe_schedule()},
                expected="one key set opening under A or B to the original keys; every "
                "procedure succeeded or answered wrong_passphrase / key_directory_locked",
                found="; ".join(r.violations),
                detail="answers: " + "; ".join(r.answers),
            )
    clean = sum(not r.violations for r in result.rounds)
    if clean:
        yield Case(
            STAGE,
            name,
            Verdict.PASSED,
            ("CONC_01",),
            source,
            detail=f"{clean} of {len(result.rounds)} rounds clean in {result.seconds:.1f} s",
        )
