"""Stage 2: the static test vectors, run through ``pgkms_conformance.vectors.runner``.

The runner does the work (materialising directory listings, comparing fields, describing values
without revealing them); this stage turns its ``Outcome`` into a ``Case`` that keeps the vector's
file, tcId, id and comment, so a failure can be found in the vector file at once. A failure
carries the bug types of the vector's flags (``triage``) and their effects, and the source
system's observed behaviour and the file's provenance when the file gives them (informative,
never judged: a failure that matches the observed behaviour says so and still fails).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pgkms_conformance.harness.checks import Context, adapter_failure_case
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.session import RunAborted
from pgkms_conformance.protocol.client import AdapterFailure, Response
from pgkms_conformance.vectors.runner import (
    MANIFEST,
    REPO_VECTOR_DIR,
    Json,
    Outcome,
    VectorFile,
    Warn,
    iter_vector_files,
    lone_request,
    run_test,
)
from pgkms_conformance.vectors.triage import bug_types_of

_STATUS = {
    "passed": Verdict.PASSED,
    "failed": Verdict.FAILED,
    "unsupported": Verdict.UNSUPPORTED,
}


def default_vector_paths() -> list[Path]:
    """The repository's ``vectors/`` directory (empty when the package runs outside the repo)."""
    return [REPO_VECTOR_DIR] if REPO_VECTOR_DIR.is_dir() else []


def load_vectors(paths: Sequence[Path | str], warn: Warn | None = None) -> list[VectorFile]:
    """Load and schema-check every file first: a bad ``--vectors`` file stops the run early
    (VectorFileError), before the IUT is started; in a directory, JSON that is no vector file
    is skipped with a one-line ``warn`` (default: stderr).

    The repository's own files are validated once, by ``vectors check`` (CI), not on every run:
    a file whose bytes and schema's bytes have the digests the generator listed in
    ``vectors/SHA256SUMS`` skips the schema validation (a fifth of a run's CPU time). Any other
    file, an edited one included, is validated in full.
    """
    digests = _generated_digests()
    return list(iter_vector_files(paths, warn, lambda path: _trusted_text(path, digests)))


def _generated_digests() -> dict[Path, str]:
    """Path -> SHA-256 of the repository's vector files as the generator wrote them; empty
    (nothing trusted) unless every schema file is as the generator wrote it too."""
    try:
        lines = (REPO_VECTOR_DIR / MANIFEST).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    digests = {}
    for line in lines:
        digest, _, rel = line.partition("  ")
        path = REPO_VECTOR_DIR / rel
        if rel.startswith("schemas/"):
            if _sha256_of(path) != digest:
                return {}
        elif rel:
            digests[path.resolve()] = digest
    return digests


def _sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _trusted_text(path: Path, trusted: dict[Path, str]) -> str | None:
    """The file's text if its bytes are what the generator listed for it, else None."""
    want = trusted.get(path.resolve())
    if want is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None  # the full load reports it
    if hashlib.sha256(data).hexdigest() != want:
        return None
    return data.decode("utf-8")


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_VECTOR_DIR.parent))
    except ValueError:
        return str(path)


def _provenance(document: dict[str, Any]) -> str | None:
    """A file's ``source`` in one line (``name version``), or None."""
    source = document.get("source")
    if not isinstance(source, dict):
        return None
    return " ".join(str(source[k]) for k in ("name", "version") if k in source) or None


def _effects(flags: Sequence[str], notes: dict[str, Any]) -> str:
    """``FLAG: effect`` for each flag whose note gives an effect, in the test's flag order."""
    parts = []
    for flag in flags:
        note = notes.get(flag)
        if isinstance(note, dict) and isinstance(note.get("effect"), str):
            parts.append(f"{flag}: {note['effect']}")
    return "; ".join(parts)


def _as_observed(case: Case, observed: Any) -> bool:
    """Did the IUT fail this vector the way its source system was observed to behave?"""
    if not isinstance(observed, dict):
        return False
    if "error" in observed:
        return case.found == str(observed["error"])
    return observed.get("result") == "valid" and case.found == "success"


def _with_triage(case: Case, test: dict[str, Any], notes: dict[str, Any]) -> Case:
    """A failed case with its bug types, its flags' effects and, when the IUT failed as the
    source system did, that fact (all informative: the verdict is the vector's)."""
    if case.verdict is not Verdict.FAILED:
        return case
    flags = [str(f) for f in test.get("flags", ())]
    source = dict(case.source)
    effect = _effects(flags, notes)
    if effect:
        source["effect"] = effect
    detail = case.detail
    if _as_observed(case, test.get("observed")):
        detail = "; ".join(x for x in (detail, "as the source system was observed to do") if x)
    return replace(case, bug_types=bug_types_of(flags, notes), source=source, detail=detail)


def cites(requirement: str) -> Callable[[Json], bool]:
    """Is ``requirement`` among a vector test's requirements?"""
    return lambda test: requirement in test.get("requirements", ())


class _Pipelined:
    """The IUT's answers to the tests of one file that are a lone request each
    (``runner.lone_request``), sent ahead in runs of consecutive such tests (``call_many``).

    ``answer(i)`` is test ``i``'s answer, or None when the test sends its own requests. Answers
    come in test order; a protocol failure is raised at the test it concerns, ends the run it
    was in, and the next lone test starts a new one (on the restarted IUT). ``close`` reads and
    drops what is still owed, so a stage stopped early leaves the client in step.
    """

    def __init__(self, ctx: Context, requests: list[tuple[str, Json] | None]) -> None:
        self._ctx, self._requests = ctx, requests
        self._stream: Iterator[Response] | None = None
        self._next = 0  # the test the stream answers next

    def answer(self, index: int) -> Response | None:
        if self._requests[index] is None:
            return None
        if self._stream is None or self._next != index:
            self.close()
            end = next(
                (i for i in range(index, len(self._requests)) if not self._requests[i]), None
            )
            run = self._requests[index:end]
            self._stream = self._ctx.session.client.call_many(r for r in run if r is not None)
        self._next = index + 1
        try:
            return next(self._stream)
        except BaseException:
            self._stream = None  # a generator that raised is finished
            raise

    def close(self) -> None:
        if isinstance(self._stream, Generator):
            self._stream.close()
        self._stream = None


def run_vectors(
    ctx: Context, files: Sequence[VectorFile], keep: Callable[[Json], bool] | None = None
) -> Iterator[Case]:
    """Every test of ``files`` in file order, or those ``keep`` is true of (a focused run splits
    the stage in two: ``harness.run.stage_order``). The tests that are a lone request each are
    pipelined (``_Pipelined``): a third of the harness's CPU time per such test, and most of
    the wall time."""
    caps = ctx.session.capabilities
    for vector_file in files:
        where = _display_path(vector_file.path)
        notes = vector_file.document.get("notes", {})
        provenance = _provenance(vector_file.document)
        tests = [(g, t) for g, t in vector_file.tests() if keep is None or keep(t)]
        for _, test in tests:  # every secret known before any request of the file goes out
            ctx.redactor.add_json(test.get("input"))
        pipelined = _Pipelined(ctx, [lone_request(test, caps) for _, test in tests])
        try:
            for index, (group, test) in enumerate(tests):
                name = f"{vector_file.path.name}#{test['tcId']}"
                case = _run_one(
                    ctx,
                    pipelined,
                    index,
                    group,
                    test,
                    name=name,
                    where=where,
                    provenance=provenance,
                )
                if case is None:
                    return
                yield _with_triage(case, test, notes)
        finally:
            pipelined.close()


def _run_one(
    ctx: Context,
    pipelined: _Pipelined,
    index: int,
    group: Json,
    test: Json,
    *,
    name: str,
    where: str,
    provenance: str | None,
) -> Case | None:
    """Test ``index`` of a file as a case; None when the run was aborted."""
    caps = ctx.session.capabilities
    source: dict[str, Any] = {
        "file": where,
        "tcId": test["tcId"],
        "id": test["id"],
        "comment": test["comment"],
        "op": test["op"],
    }
    if provenance:
        source["provenance"] = provenance
    observed = test.get("observed")
    if isinstance(observed, dict):
        source["observed"] = str(observed.get("description", ""))
    try:
        answered = pipelined.answer(index)
        outcome = run_test(ctx.session.client, test, group, capabilities=caps, answered=answered)
    except AdapterFailure as exc:
        ctx.session.recover_from(exc)
        reqs = test.get("requirements")
        requirements = tuple(str(r) for r in reqs) if isinstance(reqs, list) else ()
        return adapter_failure_case(ctx, "vectors", name, requirements, source, exc=exc)
    except RunAborted:
        return None
    except Exception as exc:  # an answer the runner could not digest: the IUT's fault
        ctx.progress.failed()
        return Case(
            "vectors",
            name,
            Verdict.FAILED,
            tuple(test.get("requirements", ())),
            source,
            expected="an answer of the shape the protocol defines",
            found=f"an answer the vector runner could not read ({type(exc).__name__})",
        )
    ctx.progress.tick(_requests_of(test))
    return _case(ctx, name, source, outcome)


def _requests_of(test: dict[str, object]) -> int:
    count = test.get("input")
    if test.get("op") == "accumulated_wrap" and isinstance(count, dict):
        return int(count.get("count", 1))
    return 1


def _case(ctx: Context, name: str, source: dict[str, object], outcome: Outcome) -> Case:
    verdict = _STATUS[outcome.status]
    if outcome.flags:
        source = {**source, "flags": list(outcome.flags)}
    if verdict is Verdict.FAILED:
        ctx.progress.failed()
    scrub = ctx.redactor.scrub
    return Case(
        "vectors",
        name,
        verdict,
        outcome.charged if verdict is Verdict.FAILED else outcome.requirements,
        source,
        expected=scrub(outcome.expected),
        found=scrub(outcome.found),
        detail=scrub("; ".join(x for x in (outcome.reason, *outcome.notes) if x)),
    )
