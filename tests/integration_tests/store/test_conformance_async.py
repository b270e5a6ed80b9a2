"""The conformance suite for the asyncio twins (mirrors ``test_conformance.py``)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from optical_memory.errors import InvalidRecordError, NotFound, StoreError
from optical_memory.store import AsyncStore
from tests.integration_tests.store.backends import AsyncStoreFactory
from tests.integration_tests.store.records_for_tests import page, segment, turn, vision_tokens


async def test_turns_come_back_in_order_and_by_id(async_store: AsyncStore) -> None:
    turns = [turn(f"message {i}") for i in range(10)]
    assert await async_store.append_turns("t", turns[:4]) == 4
    assert await async_store.append_turns("t", turns[4:]) == 6
    assert await async_store.get_turns("t") == turns
    assert await async_store.count_turns("t") == 10
    assert await async_store.get_turns("t", 2, 5) == turns[2:5]
    assert await async_store.get_turns("t", -3) == turns[-3:]
    assert await async_store.get_turn("t", turns[6].id) == turns[6]
    with pytest.raises(NotFound):
        await async_store.get_turn("t", "missing-id")


async def test_retried_append_never_duplicates(async_store: AsyncStore) -> None:
    first = [turn(f"m{i}") for i in range(3)]
    await async_store.append_turns("t", first)
    assert await async_store.append_turns("t", first) == 0
    assert await async_store.append_turns("t", [first[2], turn("m3")]) == 1
    assert await async_store.count_turns("t") == 4


async def test_concurrent_appends_lose_nothing(async_store: AsyncStore) -> None:
    batches = [[turn(f"w{w}-{i}") for i in range(20)] for w in range(8)]
    await asyncio.gather(
        *(
            async_store.append_turns("t", batch[i : i + 5])
            for batch in batches
            for i in (0, 5, 10, 15)
        )
    )
    stored = [t.message["content"] for t in await async_store.get_turns("t")]
    assert sorted(stored) == sorted(t.message["content"] for b in batches for t in b)
    for writer in range(8):
        mine = [c for c in stored if c.startswith(f"w{writer}-")]
        assert len(mine) == 20


async def test_bad_input_is_refused_and_nothing_is_written(async_store: AsyncStore) -> None:
    await async_store.append_turns("t", [turn("kept")])
    with pytest.raises(InvalidRecordError):
        await async_store.append_turns("t", "not turns")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError):
        await async_store.append_turns("", [turn("x")])
    assert [t.message["content"] for t in await async_store.get_turns("t")] == ["kept"]


async def test_segments_pages_and_replace(async_store: AsyncStore) -> None:
    record, pages = segment("t", n_pages=3)
    await async_store.put_segment(record, pages)
    assert await async_store.get_segment("t", record.id) == record
    assert await async_store.list_segments("t") == [record]
    assert await async_store.get_pages("t", record.id) == pages
    fresh = [page(tier="tiny")]
    decayed = dataclasses.replace(record, tier="tiny", page_ids=[fresh[0].id])
    await async_store.replace_segment(decayed, fresh)
    assert await async_store.get_pages("t", record.id) == fresh
    with pytest.raises(NotFound):
        await async_store.get_page("t", pages[0].id)
    await async_store.delete_segment("t", record.id)
    assert await async_store.list_segments("t") == []
    with pytest.raises(NotFound):
        await async_store.replace_segment(decayed, fresh)


async def test_vision_tokens_are_cached_per_model(async_store: AsyncStore) -> None:
    record, pages = segment("t")
    await async_store.put_segment(record, pages)
    tokens = vision_tokens("model-a")
    await async_store.put_vision_tokens("t", pages[0].id, tokens)
    assert await async_store.get_vision_tokens("t", pages[0].id, "model-a") == tokens
    assert await async_store.get_vision_tokens("t", pages[0].id, "model-b") is None
    newer = vision_tokens("model-b", rows=111)
    await async_store.put_vision_tokens("t", pages[0].id, newer)
    assert await async_store.get_vision_tokens("t", pages[0].id, "model-b") == newer
    assert await async_store.get_vision_tokens("t", pages[0].id, "model-a") is None
    with pytest.raises(NotFound):
        await async_store.put_vision_tokens("t", "no-such-page", tokens)


async def test_tenants_never_see_each_other(async_store: AsyncStore) -> None:
    other = async_store.with_tenant(async_store.tenant + "-other")
    secret = turn("secret")
    await async_store.append_turns("shared", [secret])
    record, pages = segment("shared")
    await async_store.put_segment(record, pages)
    assert await other.list_threads() == []
    assert await other.get_turns("shared") == []
    with pytest.raises(NotFound):
        await other.get_turn("shared", secret.id)
    with pytest.raises(NotFound):
        await other.get_page("shared", pages[0].id)
    await other.delete_thread("shared")
    assert await async_store.get_turns("shared") == [secret]


async def test_list_and_delete_threads(async_store: AsyncStore) -> None:
    await async_store.append_turns("b", [turn("x")])
    record, pages = segment("a")
    await async_store.put_segment(record, pages)
    assert await async_store.list_threads() == ["a", "b"]
    await async_store.delete_thread("a")
    assert await async_store.list_threads() == ["b"]


async def test_retention_expires_segments_of_a_tier(async_store_factory: AsyncStoreFactory) -> None:
    store = async_store_factory(retention={"tiny": 0.5})
    short, short_pages = segment("t", tier="tiny")
    long, long_pages = segment("t", tier="small")
    await store.put_segment(short, short_pages)
    await store.put_segment(long, long_pages)
    await asyncio.sleep(1.2)
    assert await store.list_segments("t") == [long]
    with pytest.raises(NotFound):
        await store.get_page("t", short_pages[0].id)


async def test_a_closed_store_says_so(async_store_factory: AsyncStoreFactory) -> None:
    store = async_store_factory()
    await store.aclose()
    with pytest.raises(StoreError):
        await store.append_turns("t", [turn("x")])


async def test_store_satisfies_the_protocol(async_store: AsyncStore) -> None:
    assert isinstance(async_store, AsyncStore)
    assert isinstance(async_store.with_tenant("someone-else"), AsyncStore)
