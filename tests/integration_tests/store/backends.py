"""Fixtures that give the conformance suite one store per backend.

Every test gets a fresh tenant, so tests sharing a Redis server never see each other's
records. ``store_factory(**options)`` opens another store on the same backend (same file or
server, same tenant unless ``tenant=`` is given), for options such as ``retention``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from optical_memory.store import AsyncStore, Store

BACKENDS = ["sqlite", "redis", "redis-cluster"]

StoreFactory = Callable[..., Store]
AsyncStoreFactory = Callable[..., AsyncStore]


def _location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = request.param
    if backend == "sqlite":
        return str(tmp_path / "store.db")
    fixture = "redis_url" if backend == "redis" else "redis_cluster_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    from optical_memory.store import RedisStore, SQLiteStore

    location = _location(request, tmp_path)
    tenant = f"test-{uuid.uuid4().hex[:12]}"
    opened: list[Store] = []

    def factory(**options: Any) -> Store:
        options.setdefault("tenant", tenant)
        if request.param == "sqlite":
            store: Store = SQLiteStore(location, **options)
        else:
            store = RedisStore(location, **options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


@pytest.fixture(params=BACKENDS)
async def async_store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncStoreFactory]:
    from optical_memory.store import AsyncRedisStore, AsyncSQLiteStore

    location = _location(request, tmp_path)
    tenant = f"test-{uuid.uuid4().hex[:12]}"
    opened: list[AsyncStore] = []

    def factory(**options: Any) -> AsyncStore:
        options.setdefault("tenant", tenant)
        if request.param == "sqlite":
            store: AsyncStore = AsyncSQLiteStore(location, **options)
        else:
            store = AsyncRedisStore(location, **options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.aclose()


@pytest.fixture
def async_store(async_store_factory: AsyncStoreFactory) -> AsyncStore:
    return async_store_factory()
