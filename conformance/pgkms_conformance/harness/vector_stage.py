"""Stage 2: the static test vectors, run through ``pgkms_conformance.vectors.runner``.

The runner does the work (materialising directory listings, comparing fields, describing values
without revealing them); this stage turns its ``Outcome`` into a ``Case`` that keeps the vector's
file, tcId, id and comment, so a failure can be found in the vector file at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from pgkms_conformance.harness.checks import Context, adapter_failure_case
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.session import RunAborted
from pgkms_conformance.protocol.client import AdapterFailure
from pgkms_conformance.vectors.runner import (
    MANIFEST,
    REPO_VECTOR_DIR,
    Outcome,
    VectorFile,
    load_vector_file,
    run_test,
)

_STATUS = {
    "passed": Verdict.PASSED,
    "failed": Verdict.FAILED,
    "unsupported": Verdict.UNSUPPORTED,
}


def default_vector_paths() -> list[Path]:
    """The repository's ``vectors/`` directory (empty when the package runs outside the repo)."""
    return [REPO_VECTOR_DIR] if REPO_VECTOR_DIR.is_dir() else []


def load_vectors(paths: Sequence[Path | str]) -> list[VectorFile]:
    """Load and schema-check every file first: a bad ``--vectors`` file stops the run early
    (VectorFileError), before the IUT is started.

    The repository's own files are validated once, by ``vectors check`` (CI), not on every run:
    a file whose bytes and schema's bytes have the digests the generator listed in
    ``vectors/SHA256SUMS`` skips the schema validation (a fifth of a run's CPU time). Any other
    file, an edited one included, is validated in full.
    """
    trusted = _generated_digests()
    files = []
    for path in _expand(paths):
        text = _trusted_text(path, trusted)
        files.append(load_vector_file(path, trusted_text=text))
    return files


def _expand(paths: Sequence[Path | str]) -> Iterator[Path]:
    """Each given file; a directory stands for its ``*.json`` files in sorted order (as in
    ``iter_vector_files``)."""
    for given in paths:
        path = Path(given)
        yield from sorted(path.glob("*.json")) if path.is_dir() else [path]


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


def run_vectors(ctx: Context, files: Sequence[VectorFile]) -> Iterator[Case]:
    caps = ctx.session.capabilities
    for vector_file in files:
        where = _display_path(vector_file.path)
        for group, test in vector_file.tests():
            ctx.redactor.add_json(test.get("input"))
            source = {
                "file": where,
                "tcId": test["tcId"],
                "id": test["id"],
                "comment": test["comment"],
                "op": test["op"],
            }
            name = f"{vector_file.path.name}#{test['tcId']}"
            try:
                outcome = run_test(ctx.session.client, test, group, capabilities=caps)
            except AdapterFailure as exc:
                ctx.session.recover_from(exc)
                reqs = test.get("requirements")
                requirements = tuple(str(r) for r in reqs) if isinstance(reqs, list) else ()
                yield adapter_failure_case(ctx, "vectors", name, requirements, source, exc=exc)
                continue
            except RunAborted:
                return
            except Exception as exc:  # an answer the runner could not digest: the IUT's fault
                ctx.progress.failed()
                yield Case(
                    "vectors",
                    name,
                    Verdict.FAILED,
                    tuple(test.get("requirements", ())),
                    source,
                    expected="an answer of the shape the protocol defines",
                    found=f"an answer the vector runner could not read ({type(exc).__name__})",
                )
                continue
            ctx.progress.tick(_requests_of(test))
            yield _case(ctx, name, source, outcome)


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
