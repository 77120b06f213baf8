"""Every routine task of the project is a session here; ``nox`` alone runs what CI runs."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["lint", "typecheck", "tests", "docs", "trace"]

DEV = ".[test]"
CODE = ["reference", "conformance", "tests", "bench", "spec", "docs", "noxfile.py"]


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-e", DEV, *extra)


@nox.session
def main(session: nox.Session) -> None:
    """The project's main job: the conformance harness on both bundled implementations, with
    the per-requirement report (README, first command). Extra arguments go to ``run``."""
    _install(session)
    for impl in ("reference", "independent"):
        session.run("pgkms-conformance", "run", "--impl", impl, *session.posargs)


@nox.session
def mutants(session: nox.Session) -> None:
    """The mutant zoo: the harness must catch every deviation; the mutation score last."""
    _install(session)
    session.run("pgkms-conformance", "mutants", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (CI profile: derandomized hypothesis), on every core (pytest-xdist;
    ``nox -s tests -- -n 0`` runs it in one process). Each test module runs on one worker, so
    what its tests share (a cached harness run, a module fixture) is computed once, not once
    per worker (533 CPU-s against 612 when single tests were spread, one run each, noisy);
    the longest tests start first."""
    _install(session)
    # In collection order (not xdist's default of the modules with the most tests first), so
    # the modules of tests marked long start first (tests/conftest.py).
    parallel = ["--numprocesses", "auto", "--dist", "loadfile", "--no-loadscope-reorder"]
    session.run("pytest", *parallel, *session.posargs, env={"HYPOTHESIS_PROFILE": "ci"})


@nox.session
def lint(session: nox.Session) -> None:
    _install(session, "ruff")
    session.run("ruff", "check", *CODE)
    session.run("ruff", "format", "--check", *CODE)
    # The independent implementation may not import pgkms or cryptography ([tool.importlinter]).
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test,docs]", "mypy", "types-jsonschema", "types-docutils", "nox")
    session.run("mypy", "--strict")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, each figure min / median / max over interleaved rounds (asserting nothing).

    ``bench/run.py``: 1 MiB wrap and unwrap in bytes per CPU second against OpenSSL's CPU-time
    figures for the same work on one core, and the 64-byte wrap against the least
    ``cryptography`` code that computes it, in the same process. ``bench/harness.py``: adapter
    round trips one at a time and pipelined (the harness's window) with the adapter's CPU time
    per answer, and a full harness run split into harness and IUT CPU time. Arguments go to
    ``bench/run.py`` (``--seconds``, ``--rounds``).
    """
    _install(session)
    session.run("python", "bench/run.py", *session.posargs)
    session.run("python", "bench/harness.py")


@nox.session
def docs(session: nox.Session) -> None:
    """The specification and the user guide, warnings as errors, no network; read on every
    core (``-j auto``: the spec builds in two thirds of the time, the same pages)."""
    session.install("-e", ".[test,docs]")
    for source in ("spec", "docs"):
        session.run(
            "sphinx-build", "-E", "-W", "--keep-going", "-q", "-j", "auto", "-b", "html",
            source, f"{source}/_build/html",
        )  # fmt: skip


@nox.session
def trace(session: nox.Session) -> None:
    """Requirement traceability: every spec requirement has a test or a vector; no unknown IDs."""
    _install(session)
    session.run("python", "-m", "pgkms_conformance.trace", *session.posargs)


@nox.session
def thorough(session: nox.Session) -> None:
    """Differential and property tests with many more examples (HYPOTHESIS_PROFILE=thorough).

    Prints how many examples each property test ran (hypothesis statistics) and how many
    generated inputs each fuzz target tried (the differential suite's summary section).
    """
    _install(session)
    session.run(
        "pytest",
        "tests/differential",
        "tests/independent",
        "tests/protocol",
        "--hypothesis-show-statistics",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "thorough"},
    )


@nox.session
def crash(session: nox.Session) -> None:
    """Crash-state exploration of both rotation protocols (fails if the spec's breaks one)."""
    _install(session)
    session.run("python", "-m", "pgkms_conformance.crash", *session.posargs)


@nox.session
def vectors(session: nox.Session) -> None:
    """Regenerate the test vectors: vectors/*.json and vectors/schemas/ (args: --accumulated N)."""
    _install(session)
    session.run("pgkms-conformance", "vectors", "generate", *session.posargs)


@nox.session
def vectors_check(session: nox.Session) -> None:
    """The committed vectors equal a regeneration and validate against their schemas."""
    _install(session)
    session.run("pgkms-conformance", "vectors", "check")


nox.options.sessions.append("vectors_check")


@nox.session
def protocol_check(session: nox.Session) -> None:
    """The schemas, the spec chapter's sections and the guide's table generated from
    spec/adapter-protocol.toml equal what is committed (regenerate: ``protocol generate``)."""
    _install(session)
    session.run("pgkms-conformance", "protocol", "check")


nox.options.sessions.append("protocol_check")
