"""``OpticalMemory.search`` and its async twin over the stores' search (SQLite FTS5, Redis
scan): hits carry the segment to recall, the phrase comes first, odd queries are safe."""

from __future__ import annotations

import pytest

from optical_memory import AsyncOpticalMemory, OpticalMemory
from optical_memory.errors import InvalidRecordError

from .conftest import SMALL
from .conversation import conversation


def test_hits_name_the_segment_to_recall_or_none_for_the_tail(memory: OpticalMemory) -> None:
    messages = conversation(60)
    messages.append({"role": "user", "content": "Last words: the vault code is ORCHID-7741."})
    memory.add("chat", messages)
    old = memory.search("chat", "invoice INV-1877")
    assert old[0].index < 40 and int(old[0].score) == 2
    assert "INV-1877" in old[0].turn.message["content"]
    assert old[0].segment_id is not None
    assert old[0].turn in memory.recall("chat", old[0].segment_id)
    tail = memory.search("chat", "orchid 7741")
    assert [(hit.index, hit.segment_id) for hit in tail] == [(60, None)]


def test_phrase_first_then_every_word_then_some(memory: OpticalMemory) -> None:
    memory.add(
        "chat",
        [
            ("user", "the blue whale sings"),
            ("assistant", "whale songs are blue, they say"),
            ("user", "a blue sky"),
            ("assistant", "nothing relevant"),
        ],
    )
    hits = memory.search("chat", "Blue Whale")
    assert [(hit.index, int(hit.score)) for hit in hits] == [(0, 2), (1, 1), (2, 0)]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_chinese_accents_and_query_syntax(memory: OpticalMemory) -> None:
    memory.add("chat", conversation(30))
    chinese = memory.search("chat", "集群扩容")
    assert chinese and "集群扩容" in chinese[0].turn.message["content"]
    assert memory.search("chat", "ZURICH naive")[0].turn.message["content"].count("Zürich")
    for query in ['"', "NEAR(", "*", "-", "", "   ", "🚀"]:
        assert memory.search("chat", query) == []
    assert len(memory.search("chat", "remember", limit=3)) == 3
    assert memory.search("chat", "remember", limit=0) == []
    assert memory.search("chat", "remember", limit=-1) == []
    with pytest.raises(InvalidRecordError):
        memory.search("chat", None)  # type: ignore[arg-type]


def test_forget_removes_a_thread_from_search(memory: OpticalMemory) -> None:
    memory.add("chat", conversation(20))
    memory.add("other", [("user", "remember the deployment of service 9")])
    memory.forget("chat")
    assert memory.search("chat", "deployment") == []
    assert [hit.index for hit in memory.search("other", "deployment")] == [0]


async def test_async_search(store_url: str, unique_tenant: str) -> None:
    async with AsyncOpticalMemory(store_url, tenant=unique_tenant, policy=SMALL) as memory:
        await memory.add("chat", conversation(40))
        hits = await memory.search("chat", "invoice INV-1877")
        assert hits and int(hits[0].score) == 2 and hits[0].segment_id is not None
        assert await memory.search("chat", "   ") == []
