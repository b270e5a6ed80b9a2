"""Hypothesis over random threads and queries: SQLite's FTS5 index and Redis's scan find the
same turns in the same match tiers, and no query text makes a search raise."""

from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.store import RedisStore, SQLiteStore
from tests.integration_tests.store.records_for_tests import turn

# Few words, so random turns and queries overlap; cased, accented, CJK and glued forms.
WORDS = ["red", "Red", "green", "café", "CAFE", "光", "学", "光学", "x-1", "x1", "42", "_"]
SEPARATORS = [" ", "  ", ", ", "-", "\n", "!?", '"', "*"]

texts = st.lists(
    st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)).map("".join),
    max_size=8,
).map("".join)


def test_sqlite_and_redis_find_the_same_turns_in_the_same_tiers(
    tmp_path: Path, redis_url: str, unique_tenant: str
) -> None:
    with (
        SQLiteStore(tmp_path / "p.db") as sqlite,
        RedisStore(redis_url, tenant=unique_tenant) as red,
    ):

        @settings(max_examples=150, deadline=None)
        @given(st.lists(texts, min_size=1, max_size=10), texts)
        def agree(thread_texts: list[str], query: str) -> None:
            thread = uuid.uuid4().hex
            found = []
            for store in (sqlite, red):
                store.append_turns(thread, [turn(text) for text in thread_texts])
                hits = store.search_turns(thread, query, len(thread_texts))
                found.append(sorted((hit.index, int(hit.score)) for hit in hits))
                assert all(h.turn.message["content"] == thread_texts[h.index] for h in hits)
            assert found[0] == found[1]

        agree()


def test_no_query_text_makes_a_search_raise(
    tmp_path: Path, redis_url: str, unique_tenant: str
) -> None:
    with (
        SQLiteStore(tmp_path / "q.db") as sqlite,
        RedisStore(redis_url, tenant=unique_tenant) as red,
    ):
        for store in (sqlite, red):
            store.append_turns("t", [turn("red green café 光学 x-1 AND NEAR")])

        @settings(max_examples=300, deadline=None)
        @given(st.text())
        def safe(query: str) -> None:
            for store in (sqlite, red):
                assert len(store.search_turns("t", query)) <= 1

        safe()
