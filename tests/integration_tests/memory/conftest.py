"""Memory fixtures: a fresh memory on a real SQLite file or a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from optical_memory import DecayPolicy, OpticalMemory
from tests.integration_tests.store.conftest import (  # noqa: F401  # fixtures
    redis_server,
    redis_url,
    unique_tenant,
)

# Small segments and a short tail, so a few dozen turns make several segments.
SMALL = DecayPolicy(keep=("messages", 4), segment_pages=0.15)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'memory.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def memory(store_url: str, unique_tenant: str) -> Iterator[OpticalMemory]:  # noqa: F811
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL) as memory:
        yield memory
