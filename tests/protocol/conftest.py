"""Both bundled adapters, one subprocess each per test module (spawning is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.protocol.client import AdapterClient

ADAPTERS = ("reference", "independent")


@pytest.fixture(scope="module", params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> Iterator[AdapterClient]:
    with AdapterClient(BUNDLED[request.param], timeout=30.0) as client:
        yield client
