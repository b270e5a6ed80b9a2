"""Byte values by key on the asyncio twins (mirrors ``test_blobs.py``)."""

from __future__ import annotations

import asyncio

import pytest

from optical_memory.errors import InvalidRecordError
from optical_memory.store import AsyncStore
from optical_memory.store.blobs import KEYS_PER_PAGE


async def _keys(store: AsyncStore, prefix: str | None = None) -> list[str]:
    return [key async for key in store.iter_blob_keys(prefix)]


async def test_values_round_trip_and_list_by_prefix(async_store: AsyncStore) -> None:
    values = {"a": b"1", "a/b": b"\x00\xff", "ab": b"", "中文": "中".encode()}
    await async_store.put_blobs(values)
    assert await async_store.get_blobs(["ab", "missing", "中文"]) == [b"", None, "中".encode()]
    assert await _keys(async_store) == sorted(values)
    assert await _keys(async_store, "a/") == ["a/b"]
    await async_store.delete_blobs(["a", "nope"])
    assert await _keys(async_store) == ["a/b", "ab", "中文"]


async def test_listing_pages_through_many_keys(async_store: AsyncStore) -> None:
    keys = [f"k/{i:05d}" for i in range(KEYS_PER_PAGE + 3)]
    await async_store.put_blobs(dict.fromkeys(keys, b""))
    assert await _keys(async_store, "k/") == keys


async def test_concurrent_writers_lose_nothing(async_store: AsyncStore) -> None:
    await asyncio.gather(*(async_store.put_blobs({f"w/{n:02d}": bytes([n])}) for n in range(20)))
    keys = await _keys(async_store, "w/")
    assert await async_store.get_blobs(keys) == [bytes([n]) for n in range(20)]


async def test_bad_items_are_refused_and_tenants_isolated(async_store: AsyncStore) -> None:
    with pytest.raises(InvalidRecordError):
        await async_store.put_blobs({"good": b"v", "": b"v"})
    assert await _keys(async_store) == []
    await async_store.put_blobs({"k": b"mine"})
    other = async_store.with_tenant("someone-else")
    assert await other.get_blobs(["k"]) == [None]
