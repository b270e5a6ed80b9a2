"""OpticalByteStore: langchain-tests' standard ByteStore suites on a real SQLite file and a
real redis-server (sync store; async over the sync store and over the async store), and
what the suites do not check: tenants, namespaces, bad keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from langchain_tests.integration_tests import BaseStoreAsyncTests, BaseStoreSyncTests

from optical_memory.errors import InvalidRecordError, InvalidSettingError
from optical_memory.integrations.langchain import OpticalByteStore
from optical_memory.store import open_async_store, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bytes.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


THREE = (b"foo", b"\x00\xffbar", b"baz" * 1000)


class TestByteStoreSync(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, store_url: str, unique_tenant: str) -> Iterator[OpticalByteStore]:
        byte_store = OpticalByteStore(store_url, tenant=unique_tenant)
        yield byte_store
        byte_store.store.close()  # type: ignore[union-attr]

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return THREE


class TestByteStoreAsyncOverSyncStore(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    async def kv_store(self, store_url: str, unique_tenant: str) -> AsyncIterator[OpticalByteStore]:
        byte_store = OpticalByteStore(store_url, tenant=unique_tenant)
        yield byte_store
        byte_store.store.close()  # type: ignore[union-attr]

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return THREE


class TestByteStoreAsyncStore(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    async def kv_store(self, store_url: str, unique_tenant: str) -> AsyncIterator[OpticalByteStore]:
        store = open_async_store(store_url, tenant=unique_tenant)
        yield OpticalByteStore(store)
        await store.aclose()

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return THREE


def test_tenants_and_namespaces_keep_keys_apart(store_url: str, unique_tenant: str) -> None:
    store = open_store(store_url, tenant=unique_tenant)
    ours = OpticalByteStore(store)
    theirs = OpticalByteStore(store, tenant=unique_tenant + "-other")
    other_namespace = OpticalByteStore(store, namespace="docs")
    ours.mset([("k1", b"a"), ("k2", b"b")])
    theirs.mset([("k1", b"x")])
    other_namespace.mset([("k1", b"y")])
    assert ours.mget(["k1", "k2"]) == [b"a", b"b"]
    assert theirs.mget(["k1", "k2"]) == [b"x", None]
    assert list(ours.yield_keys()) == ["k1", "k2"]
    assert list(other_namespace.yield_keys()) == ["k1"]
    assert sorted(store.iter_blob_keys()) == ["docs/k1", "langchain/k1", "langchain/k2"]
    ours.mdelete(["k1"])
    assert theirs.mget(["k1"]) == [b"x"] and other_namespace.mget(["k1"]) == [b"y"]
    store.close()


def test_bad_input_gets_our_errors(store_url: str, unique_tenant: str) -> None:
    byte_store = OpticalByteStore(store_url, tenant=unique_tenant)
    with pytest.raises(InvalidRecordError):
        byte_store.mset([("k", "not bytes")])  # type: ignore[list-item]
    with pytest.raises(InvalidRecordError):
        byte_store.mget([""])
    with pytest.raises(InvalidSettingError):
        OpticalByteStore(42)  # type: ignore[arg-type]
    byte_store.store.close()  # type: ignore[union-attr]


async def test_an_async_store_refuses_sync_calls(store_url: str, unique_tenant: str) -> None:
    store = open_async_store(store_url, tenant=unique_tenant)
    with pytest.raises(InvalidSettingError, match="amget"):
        OpticalByteStore(store).mget(["k"])
    await store.aclose()
