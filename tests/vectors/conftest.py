"""Fixtures for the vector tests: the committed files and the adapters that exist."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator

import pytest
from pgkms_conformance.protocol.client import AdapterClient
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR, VectorFile, iter_vector_files

# Adapters to run every vector through: the reference always; the independent implementation
# once it is merged (it is written on another branch).
ADAPTERS = {"reference": "pgkms.adapter", "independent": "pgkms_independent.adapter"}
PRESENT = [
    name
    for name, module in ADAPTERS.items()
    if importlib.util.find_spec(module.split(".")[0]) is not None
    and importlib.util.find_spec(module) is not None
]


@pytest.fixture(scope="session")
def vector_files() -> list[VectorFile]:
    return list(iter_vector_files([REPO_VECTOR_DIR]))


@pytest.fixture(scope="session")
def reference_client() -> Iterator[AdapterClient]:
    with AdapterClient([sys.executable, "-m", "pgkms.adapter"], timeout=60) as client:
        yield client
