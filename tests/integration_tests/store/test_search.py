"""``search_turns`` on every store: SQLite (FTS5), a single Redis and a Redis Cluster (a
scan of the newest turns). Tokens and ranking are defined in ``optical_memory/store/search.py``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from optical_memory.errors import InvalidRecordError
from optical_memory.records import Turn
from optical_memory.store import RedisStore, SQLiteStore, Store
from tests.integration_tests.store.backends import BACKENDS
from tests.integration_tests.store.records_for_tests import turn

BIG = 5000
# Turns planted in the big thread, by index, and what each one says.
PLANTED = {
    1234: "By the way, the courier's name is Zanzibar Quillfeather.",
    2222: "我们把光学记忆系统部署到了生产环境，延迟下降了百分之三十。",
    3001: "The purple elephant migration starts on the ninth of May.",
    3500: "Dessert was a crème brûlée at the Café Zürich, and it was naïve of me.",
    4321: "Refund approved for invoice INV-2024-0042 (ticket #77-b).",
}
# Words that also occur apart in the filler, so the phrase has rivals.
RIVALS = ["purple", "elephant", "migration"]


def filler(rng: random.Random) -> str:
    words = [f"w{rng.randrange(400)}" for _ in range(rng.randrange(8, 40))]
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words)), rng.choice(RIVALS))
    return " ".join(words)


@dataclass
class BigThread:
    store: Store
    thread: str


def open_backend(request: pytest.FixtureRequest, path: Path, backend: str, tenant: str) -> Store:
    if backend == "sqlite":
        return SQLiteStore(path / "search.db", tenant=tenant)
    fixture = "redis_url" if backend == "redis" else "redis_cluster_url"
    return RedisStore(str(request.getfixturevalue(fixture)), tenant=tenant)


@pytest.fixture(scope="module", params=BACKENDS)
def big(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BigThread]:
    """A 5,000-turn thread (written once per backend) with :data:`PLANTED` turns in it."""
    store = open_backend(
        request, tmp_path_factory.mktemp("search"), request.param, f"t-{uuid.uuid4().hex[:12]}"
    )
    rng = random.Random(7)
    turns = [turn(PLANTED.get(i) or filler(rng)) for i in range(BIG)]
    for start in range(0, BIG, 1000):
        store.append_turns("big", turns[start : start + 1000])
    yield BigThread(store, "big")
    store.close()


def indexes(store: Store, thread: str, query: str, limit: int = 10) -> list[int]:
    return [hit.index for hit in store.search_turns(thread, query, limit)]


# -- finding things in a long thread ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("zanzibar", 1234),  # a rare word, any case
        ("Quillfeather", 1234),
        ("INV-2024-0042", 4321),  # an identifier, punctuation and all
        ("inv 2024 0042", 4321),
        ("0042", 4321),
        ("#77-b", 4321),
        ("光学记忆", 2222),  # Chinese, inside a run with no spaces
        ("记忆", 2222),
        ("部署到了生产环境", 2222),
        ("creme brulee", 3500),  # accents in the turn, none in the query
        ("CAFÉ ZÜRICH", 3500),
        ("naive", 3500),
    ],
)
def test_finds_a_planted_turn_in_a_long_thread(big: BigThread, query: str, index: int) -> None:
    hits = big.store.search_turns(big.thread, query)
    assert hits and hits[0].index == index, [h.index for h in hits]
    assert hits[0].turn.message["content"] == PLANTED[index]
    assert big.store.get_turns(big.thread, index, index + 1) == [hits[0].turn]


def test_the_phrase_match_ranks_first(big: BigThread) -> None:
    hits = big.store.search_turns(big.thread, "purple elephant migration", 20)
    assert hits[0].index == 3001 and int(hits[0].score) == 2
    # Turns with only some of the words follow, lower.
    assert len(hits) == 20
    assert all(int(hit.score) == 0 for hit in hits[1:])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_words_out_of_order_rank_below_the_phrase(big: BigThread) -> None:
    hits = big.store.search_turns(big.thread, "migration elephant purple")
    assert hits[0].index == 3001 and int(hits[0].score) == 1  # every word, not as a phrase


def test_limit_is_respected(big: BigThread) -> None:
    for limit in (0, 1, 3, 25):
        assert len(big.store.search_turns(big.thread, "purple", limit)) == limit
    assert len(indexes(big.store, big.thread, "w7")) == 10  # the default


def test_a_word_absent_from_the_thread_finds_nothing(big: BigThread) -> None:
    assert big.store.search_turns(big.thread, "xylophone") == []
    assert big.store.search_turns(big.thread, "zanzibars") == []  # whole words only


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"""',
        'zanzibar"',
        "AND",
        "OR zanzibar",
        "zanzibar NOT",
        "*",
        "zanzi*",
        "NEAR(",
        "NEAR(zanzibar quillfeather, 2)",
        "-zanzibar",
        "^zanzibar",
        "{body}: zanzibar",
        "scope:x",
        "body : zanzibar",
        "(zanzibar",
        "zanzibar)",
        "':\\'",
        "\x00zanzibar",
        "zanzibar\ud800",
        "'; DROP TABLE turns; --",
        "% _ [a-z]",
    ],
)
def test_query_syntax_in_the_text_is_never_syntax(big: BigThread, query: str) -> None:
    hits = big.store.search_turns(big.thread, query)
    if "zanzibar" in query.lower():
        assert hits and hits[0].index == 1234
    assert big.store.count_turns(big.thread) == BIG


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "!?.,;:", "…—", "🚀🚀"])
def test_a_query_without_letters_or_digits_finds_nothing(big: BigThread, query: str) -> None:
    assert big.store.search_turns(big.thread, query) == []


# -- semantics on small threads -----------------------------------------------------------


def test_bad_arguments_are_refused(store: Store) -> None:
    store.append_turns("t", [turn("hello")])
    for query, limit in ((None, 10), (b"hello", 10), ("hello", -1), ("hello", 2.5), ("x", True)):
        with pytest.raises(InvalidRecordError):
            store.search_turns("t", query, limit)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError):
        store.search_turns("", "hello")


def test_unknown_thread_finds_nothing(store: Store) -> None:
    assert store.search_turns("never-written", "hello") == []


def test_ties_go_to_the_newest_turn(store: Store) -> None:
    store.append_turns("t", [turn("same words here") for _ in range(5)])
    assert indexes(store, "t", "same words") == [4, 3, 2, 1, 0]


def test_a_turn_is_searchable_as_soon_as_appended_and_retries_do_not_duplicate(
    store: Store,
) -> None:
    first = turn("alpha bravo")
    store.append_turns("t", [first])
    assert indexes(store, "t", "bravo") == [0]
    store.append_turns("t", [first, turn("charlie bravo")])  # first is skipped
    assert indexes(store, "t", "bravo") == [1, 0]


def test_tool_calls_are_searched_as_a_page_shows_them(store: Store) -> None:
    call = Turn(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order": "A-77"}'},
                }
            ],
        }
    )
    langchain = Turn(
        {
            "type": "ai",
            "data": {
                "content": [{"type": "text", "text": "Checking the ledger"}],
                "tool_calls": [{"id": "c2", "name": "ledger_sum", "args": {"year": 2031}}],
            },
        }
    )
    result = Turn({"role": "tool", "tool_call_id": "call_9", "content": "order A-77 shipped"})
    store.append_turns("t", [call, result, langchain])
    hits = store.search_turns("t", "lookup_order")  # "order" alone is in the result too
    assert [(h.index, int(h.score)) for h in hits] == [(0, 2), (1, 0)]
    assert indexes(store, "t", "A-77") == [1, 0]
    assert indexes(store, "t", "ledger 2031") == [2]


def test_threads_are_searched_apart(store: Store) -> None:
    store.append_turns("one", [turn("the shared secret word is marmalade")])
    store.append_turns("two", [turn("nothing to see")])
    assert indexes(store, "one", "marmalade") == [0]
    assert indexes(store, "two", "marmalade") == []


def test_tenants_never_find_each_others_turns(store: Store) -> None:
    other = store.with_tenant(store.tenant + "-other")
    store.append_turns("shared-name", [turn("tenant A's marmalade recipe")])
    other.append_turns("shared-name", [turn("tenant B has no jam")])
    assert indexes(other, "shared-name", "marmalade") == []
    assert indexes(other, "shared-name", "jam") == [0]
    assert [h.turn.message["content"] for h in store.search_turns("shared-name", "jam recipe")] == [
        "tenant A's marmalade recipe"
    ]
    other.delete_thread("shared-name")
    assert indexes(store, "shared-name", "marmalade") == [0]


def test_delete_thread_removes_its_turns_from_search(store: Store) -> None:
    store.append_turns("t", [turn("ephemeral kumquat"), turn("another kumquat")])
    store.delete_thread("t")
    assert store.search_turns("t", "kumquat") == []
    # The name can be used again; only the new turns are found.
    store.append_turns("t", [turn("a fresh kumquat")])
    hits = store.search_turns("t", "kumquat")
    assert [(h.index, h.turn.message["content"]) for h in hits] == [(0, "a fresh kumquat")]


def test_score_is_tier_plus_relevance(store: Store) -> None:
    store.append_turns(
        "t",
        [
            turn("red green blue"),  # phrase
            turn("blue green red"),  # every word
            turn("just red"),  # some
            turn("nothing"),
        ],
    )
    hits = store.search_turns("t", "red green blue")
    assert [(h.index, int(h.score)) for h in hits] == [(0, 2), (1, 1), (2, 0)]
    assert all(0 <= h.score - int(h.score) < 1 for h in hits)


def test_korean_and_japanese_match_inside_words(store: Store) -> None:
    store.append_turns("t", [turn("한국어를 공부합니다"), turn("カタカナとひらがなの練習")])
    assert indexes(store, "t", "한국어") == [0]
    assert indexes(store, "t", "ひらがな") == [1]
    assert indexes(store, "t", "ｶﾀｶﾅ") == [1]  # half-width katakana is the same text
