"""LangChain fixtures: memories on a real SQLite file (and on a real redis-server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from optical_memory import OpticalMemory
from tests.integration_tests.store.conftest import (  # noqa: F401  # fixtures
    redis_server,
    redis_url,
    unique_tenant,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'memory.db'}"


@pytest.fixture
def memory(sqlite_url: str) -> Iterator[OpticalMemory]:
    """A memory with the default policy, drawing pages for the Anthropic reader only."""
    with OpticalMemory(sqlite_url, readers=("anthropic",)) as memory:
        yield memory
