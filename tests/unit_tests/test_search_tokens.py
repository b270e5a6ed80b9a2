"""Search tokens and FTS5 expressions (optical_memory/store/search.py), offline: SQLite runs
in memory."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.errors import StoreError
from optical_memory.records import Turn
from optical_memory.store.search import (
    MAX_QUERY_TOKENS,
    SearchQuery,
    search_tokens,
    turn_tokens,
)
from optical_memory.store.sqlite_schema import migrate, search_body, search_prefix, thread_prefix


def test_tokens_fold_case_width_and_accents_and_split_cjk() -> None:
    assert search_tokens("Café-Straße: ＡＢＣ naïve Ærø") == [
        "cafe",
        "strasse",
        "abc",
        "naive",
        "ærø",
    ]
    assert search_tokens("光学记忆 v2_final") == ["光", "学", "记", "忆", "v2", "final"]
    assert search_tokens("ﾃｽﾄ テスト 한국어") == [
        "テ",
        "ス",
        "ト",
        "テ",
        "ス",
        "ト",
        "한",
        "국",
        "어",
    ]
    assert search_tokens("كَتَبَ كتب שָׁלוֹם שלום") == ["كتب", "كتب", "שלום", "שלום"]
    assert search_tokens('"AND" OR NEAR(x, 2) * -y ^z {col}:') == [
        "and", "or", "near", "x", "2", "y", "z", "col",
    ]  # fmt: skip
    assert search_tokens("!?… 🚀 \t") == []


def test_a_turn_is_searched_by_its_text_and_tool_calls() -> None:
    call = Turn(
        {
            "role": "assistant",
            "content": "Let me check",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_x", "arguments": "{}"}}
            ],
        }
    )
    assert turn_tokens(call) == ["let", "me", "check", "calls", "get", "x", "id", "c1"]


def test_fts_tiers_quote_every_token() -> None:
    assert SearchQuery.parse("Red, green").fts_tiers() == [
        (2, '"red green"'),
        (1, '("red" AND "green")'),
        (0, '("red" OR "green")'),
    ]
    assert SearchQuery.parse("red red").fts_tiers() == [(2, '"red red"'), (1, '("red")')]
    assert SearchQuery.parse("red").fts_tiers() == [(2, '"red"')]
    assert len(SearchQuery.parse("w " * 500).tokens) == MAX_QUERY_TOKENS
    assert not SearchQuery.parse(" - ")


@settings(max_examples=300)
@given(st.text())
def test_tokens_are_stable_when_tokenized_again(text: str) -> None:
    tokens = search_tokens(text)
    assert search_tokens(" ".join(tokens)) == tokens
    assert all(token and '"' not in token and " " not in token for token in tokens)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_any_query_is_a_valid_fts5_expression(body: str, query: str) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    prefix = search_prefix(conn, b"tenant", b"thread", create=True)
    assert prefix == "0000001"
    conn.execute(
        "INSERT INTO turn_search (scope, body, position) VALUES (?, ?, 0)",
        (prefix, search_body(prefix, search_tokens(body))),
    )
    parsed = SearchQuery.parse(query)
    for _, expression in parsed.fts_tiers(prefix) if parsed else []:
        conn.execute(
            "SELECT position FROM turn_search WHERE turn_search MATCH ? ORDER BY rank",
            ("{body} : " + expression,),
        ).fetchall()
    conn.close()


def test_thread_prefixes_are_fixed_width() -> None:
    assert [thread_prefix(n) for n in (0, 1, 35, 36, 36**7 - 1)] == [
        "0000000", "0000001", "000000z", "0000010", "zzzzzzz",
    ]  # fmt: skip
    with pytest.raises(StoreError):
        thread_prefix(36**7)
    assert SearchQuery.parse("a b").fts_tiers("0000001")[0] == (2, '"0000001a 0000001b"')
