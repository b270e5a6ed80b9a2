"""``search_turns`` on the asyncio twins (mirrors ``test_search.py``)."""

from __future__ import annotations

import uuid

import pytest

from optical_memory.errors import InvalidRecordError
from optical_memory.store import AsyncRedisStore, AsyncStore
from optical_memory.store.redis_layout import Keys
from tests.integration_tests.store.records_for_tests import turn


async def indexes(store: AsyncStore, thread: str, query: str, limit: int = 10) -> list[int]:
    return [hit.index for hit in await store.search_turns(thread, query, limit)]


async def test_finds_planted_turns_and_ranks_the_phrase_first(async_store: AsyncStore) -> None:
    texts = [f"note {i} about purple or elephant things" for i in range(300)]
    texts[120] = "The purple elephant parade, invoice INV-2024-0042, 光学记忆系统, café"
    await async_store.append_turns("t", [turn(text) for text in texts])
    for query in ("purple elephant parade", "inv-2024-0042", "记忆", "CAFE"):
        hits = await async_store.search_turns("t", query)
        assert hits[0].index == 120 and int(hits[0].score) == 2, query
    assert len(await async_store.search_turns("t", "purple elephant", 25)) == 25
    assert await async_store.search_turns("t", "purple", 0) == []


@pytest.mark.parametrize("query", ['"', "AND", "NEAR(", "*", "-", "", "   ", "🚀"])
async def test_odd_queries_neither_raise_nor_find(async_store: AsyncStore, query: str) -> None:
    await async_store.append_turns("t", [turn("plain words")])
    assert await async_store.search_turns("t", query) == []


async def test_bad_arguments_are_refused(async_store: AsyncStore) -> None:
    with pytest.raises(InvalidRecordError):
        await async_store.search_turns("t", None, 10)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError):
        await async_store.search_turns("t", "x", -1)


async def test_threads_tenants_and_deletes(async_store: AsyncStore) -> None:
    other = async_store.with_tenant(async_store.tenant + "-other")
    await async_store.append_turns("t", [turn("marmalade recipe")])
    await async_store.append_turns("u", [turn("nothing")])
    await other.append_turns("t", [turn("jam")])
    assert await indexes(async_store, "t", "marmalade") == [0]
    assert await indexes(async_store, "u", "marmalade") == []
    assert await indexes(other, "t", "marmalade") == []
    await async_store.delete_thread("t")
    assert await async_store.search_turns("t", "marmalade") == []
    assert await indexes(other, "t", "jam") == [0]


@pytest.mark.parametrize("backend", ["redis_url", "redis_cluster_url"])
async def test_a_redis_thread_without_texts_is_filled_in(
    request: pytest.FixtureRequest, backend: str
) -> None:
    store = AsyncRedisStore(
        str(request.getfixturevalue(backend)), tenant=f"t-{uuid.uuid4().hex[:12]}"
    )
    try:
        await store.append_turns("t", [turn(f"note {i}") for i in range(20)] + [turn("tangerine")])
        block = Keys(store.tenant).text("t", 0)
        await store._client.delete(block)
        assert await indexes(store, "t", "tangerine") == [20]
        texts, rebuild = store._scan_blocks(range(21), [0], [await store._client.get(block)])
        assert rebuild == [] and len(texts) == 21
    finally:
        await store.aclose()
