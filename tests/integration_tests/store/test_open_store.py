"""``open_store`` picks the backend from a URL and refuses what it cannot parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from optical_memory.errors import InvalidStoreURL
from optical_memory.store import (
    AsyncRedisStore,
    AsyncSQLiteStore,
    RedisStore,
    SQLiteStore,
    open_async_store,
    open_store,
)
from tests.integration_tests.store.records_for_tests import turn


def test_sqlite_urls_follow_the_sqlalchemy_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///relative.db")
    absolute = open_store(f"sqlite:///{tmp_path}/absolute.db")  # tmp_path starts with "/"
    try:
        assert isinstance(relative, SQLiteStore)
        relative.append_turns("t", [turn("x")])
        absolute.append_turns("t", [turn("y")])
        assert (tmp_path / "relative.db").exists()
        assert (tmp_path / "absolute.db").exists()
    finally:
        relative.close()
        absolute.close()


def test_redis_urls_open_a_redis_store(redis_url: str, unique_tenant: str) -> None:
    store = open_store(redis_url, tenant=unique_tenant)
    try:
        assert isinstance(store, RedisStore)
        assert store.tenant == unique_tenant
        store.append_turns("t", [turn("x")])
        assert store.count_turns("t") == 1
    finally:
        store.close()


async def test_async_twin_opens_the_same_backends(tmp_path: Path, redis_url: str) -> None:
    sqlite = open_async_store(f"sqlite:///{tmp_path}/a.db")
    redis = open_async_store(redis_url)
    assert isinstance(sqlite, AsyncSQLiteStore)
    assert isinstance(redis, AsyncRedisStore)
    await sqlite.aclose()
    await redis.aclose()


@pytest.mark.parametrize(
    "url",
    ["", "memory.db", "sqlite://", "sqlite:///", "postgres://localhost/db", "ftp://x", 42, None],
)
def test_malformed_urls_are_refused(url: object) -> None:
    with pytest.raises(InvalidStoreURL):
        open_store(url)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # InvalidStoreURL is also a ValueError
        open_async_store(url)  # type: ignore[arg-type]


def test_errors_never_show_the_password() -> None:
    with pytest.raises(InvalidStoreURL) as caught:
        open_store("postgres://user:hunter2@localhost/db")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(InvalidStoreURL) as caught:
        open_store("sqlite://user:hunter2@")
    assert "hunter2" not in str(caught.value)
