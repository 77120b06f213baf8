"""Fixtures: the C adapter built once per session into a temporary directory (removed after)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.c_adapter.build import BINARY, MissingDependencies, ensure_dependencies, make


@dataclass(frozen=True)
class Built:
    binary: Path
    build_dir: Path
    seconds: float


@pytest.fixture(scope="session")
def c_adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    try:
        ensure_dependencies()
    except MissingDependencies as exc:
        pytest.fail(str(exc), pytrace=False)
    build_dir = tmp_path_factory.mktemp("c-adapter-build")
    seconds = make(build_dir, "all")
    yield Built(build_dir / BINARY, build_dir, seconds)
    make(build_dir, "clean")
