"""One behaviour for every store: SQLite, a single Redis, and a 3-node Redis Cluster.

The semantics under test are written down in ``optical_memory/store/base.py``.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from optical_memory.errors import (
    InvalidRecordError,
    NotFound,
    OpticalMemoryError,
    RecordTooLarge,
    StoreError,
)
from optical_memory.records import Segment, Turn
from optical_memory.store import Store
from optical_memory.store.codec import MAX_BLOB_BYTES
from tests.integration_tests.store.backends import StoreFactory
from tests.integration_tests.store.records_for_tests import page, segment, turn, vision_tokens

THREAD_NAMES = [
    "plain",
    "with:colons:and{braces}",
    "glob*?[a-z]\\",
    "emoji 👩‍👩‍👧 and spaces",
    "עברית RTL",
    "中文线程",
    "%41 percent",
    "x" * 256,
]


# -- turns ------------------------------------------------------------------------------


def test_turns_come_back_in_order_and_by_id(store: Store) -> None:
    turns = [turn(f"message {i}") for i in range(10)]
    assert store.append_turns("t", turns[:4]) == 4
    assert store.append_turns("t", turns[4:]) == 6
    assert store.get_turns("t") == turns
    assert store.count_turns("t") == 10
    assert store.get_turns("t", 2, 5) == turns[2:5]
    assert store.get_turns("t", -3) == turns[-3:]
    assert store.get_turns("t", 0, -8) == turns[0:-8]
    assert store.get_turns("t", 8, 100) == turns[8:]
    assert store.get_turns("t", 7, 3) == []
    assert store.get_turn("t", turns[6].id) == turns[6]


def test_unknown_thread_is_empty_and_unknown_turn_is_not_found(store: Store) -> None:
    assert store.get_turns("nobody") == []
    assert store.count_turns("nobody") == 0
    store.append_turns("t", [turn("a")])
    with pytest.raises(NotFound, match="missing-id"):
        store.get_turn("t", "missing-id")
    with pytest.raises(KeyError):  # NotFound is also a KeyError
        store.get_turn("nobody", "x")


def test_retried_append_never_duplicates(store: Store) -> None:
    first = [turn(f"m{i}") for i in range(3)]
    store.append_turns("t", first)
    assert store.append_turns("t", first) == 0
    more = [first[2], turn("m3"), turn("m4")]
    assert store.append_turns("t", more) == 2
    assert [t.message["content"] for t in store.get_turns("t")] == ["m0", "m1", "m2", "m3", "m4"]


def test_messages_round_trip_verbatim(store: Store) -> None:
    messages = [
        Turn(
            {
                "type": "ai",
                "data": {
                    "content": [{"type": "text", "text": "x"}],
                    "id": "ai-1",
                    "tool_calls": [{"name": "f", "args": {}, "id": "c1"}],
                },
            }
        ),
        turn("中文 עברית 👩‍👩‍👧 é\u0301 \ud800 \x00"),
        turn(""),
        turn("y" * 1_000_000),
    ]
    store.append_turns("t", messages)
    assert store.get_turns("t") == messages


@pytest.mark.parametrize("thread", THREAD_NAMES)
def test_any_thread_name_works(store: Store, thread: str) -> None:
    store.append_turns(thread, [turn("hello")])
    record, pages = segment(thread)
    store.put_segment(record, pages)
    assert store.get_turns(thread)[0].message["content"] == "hello"
    assert store.get_pages(thread, record.id) == pages
    assert thread in store.list_threads()


def test_bad_input_is_refused_and_nothing_is_written(store: Store) -> None:
    store.append_turns("t", [turn("kept")])
    bad_calls = [
        lambda: store.append_turns("t", "not turns"),  # type: ignore[arg-type]
        lambda: store.append_turns("t", [turn("ok"), {"role": "user"}]),  # type: ignore[list-item]
        lambda: store.append_turns("", [turn("x")]),
        lambda: store.append_turns("x" * 257, [turn("x")]),
        lambda: store.append_turns(42, [turn("x")]),  # type: ignore[arg-type]
        lambda: store.append_turns("t", [turn("dup", id="same"), turn("dup2", id="same")]),
        lambda: store.put_segment("not a segment", []),  # type: ignore[arg-type]
    ]
    for call in bad_calls:
        with pytest.raises(InvalidRecordError):
            call()
    assert [t.message["content"] for t in store.get_turns("t")] == ["kept"]
    assert store.list_segments("t") == []


# -- segments and pages -------------------------------------------------------------------


def test_segments_and_pages_round_trip(store: Store) -> None:
    first, first_pages = segment("t", n_pages=3)
    second, second_pages = segment("t", n_pages=1, tier="tiny", created_at=first.created_at + 1)
    store.put_segment(second, second_pages)
    store.put_segment(first, first_pages)
    assert store.get_segment("t", first.id) == first
    assert store.list_segments("t") == [first, second]
    assert store.get_pages("t", first.id) == first_pages
    assert store.get_page("t", second_pages[0].id) == second_pages[0]
    with pytest.raises(NotFound):
        store.get_segment("t", "missing")
    with pytest.raises(NotFound):
        store.get_pages("t", "missing")
    with pytest.raises(NotFound):
        store.get_page("t", "missing")


def test_replace_segment_swaps_pages_and_drops_the_old_ones(store: Store) -> None:
    record, pages = segment("t", n_pages=3)
    store.put_segment(record, pages)
    store.put_vision_tokens("t", pages[0].id, vision_tokens())
    kept = pages[2]
    fresh = [page(tier="tiny"), kept]
    decayed = dataclasses.replace(record, tier="tiny", page_ids=[p.id for p in fresh])
    store.replace_segment(decayed, fresh)
    assert store.get_segment("t", record.id) == decayed
    assert store.get_pages("t", record.id) == fresh
    for gone in pages[:2]:
        with pytest.raises(NotFound):
            store.get_page("t", gone.id)
    assert store.get_vision_tokens("t", pages[0].id, "model-a") is None


def test_replace_of_a_missing_segment_is_not_found(store: Store) -> None:
    record, pages = segment("t")
    with pytest.raises(NotFound, match=record.id):
        store.replace_segment(record, pages)
    assert store.list_segments("t") == []


def test_pages_must_match_the_segment_and_nothing_changes_otherwise(store: Store) -> None:
    record, pages = segment("t", n_pages=2)
    store.put_segment(record, pages)
    _other, other_pages = segment("t", n_pages=2)
    wrong = dataclasses.replace(record, page_ids=[p.id for p in other_pages])
    with pytest.raises(InvalidRecordError):
        store.put_segment(wrong, list(reversed(other_pages)))
    with pytest.raises(InvalidRecordError):
        store.put_segment(wrong, other_pages[:1])
    assert store.get_segment("t", record.id) == record
    assert store.get_pages("t", record.id) == pages


def test_oversized_page_is_refused_and_nothing_is_written(store: Store) -> None:
    record, _pages = segment("t", n_pages=1)
    huge = page(size=MAX_BLOB_BYTES + 1)
    with pytest.raises(RecordTooLarge):
        store.put_segment(dataclasses.replace(record, page_ids=[huge.id]), [huge])
    assert store.list_segments("t") == []


def test_delete_segment_removes_its_pages_and_tokens(store: Store) -> None:
    record, pages = segment("t")
    keep, keep_pages = segment("t")
    store.put_segment(record, pages)
    store.put_segment(keep, keep_pages)
    store.put_vision_tokens("t", pages[0].id, vision_tokens())
    store.delete_segment("t", record.id)
    store.delete_segment("t", record.id)  # deleting twice is fine
    assert store.list_segments("t") == [keep]
    with pytest.raises(NotFound):
        store.get_page("t", pages[0].id)
    assert store.get_vision_tokens("t", pages[0].id, "model-a") is None
    assert store.get_pages("t", keep.id) == keep_pages


def test_a_page_shared_by_two_segments_lives_while_either_lists_it(store: Store) -> None:
    shared = page()
    first, first_pages = segment("t", n_pages=1)
    first = dataclasses.replace(first, page_ids=[first_pages[0].id, shared.id])
    second = Segment("t", turn_ids=["t3"], tier="small", page_ids=[shared.id])
    store.put_segment(first, [first_pages[0], shared])
    store.put_segment(second, [shared])
    store.put_vision_tokens("t", shared.id, vision_tokens())
    store.delete_segment("t", first.id)
    assert store.get_pages("t", second.id) == [shared]
    assert store.get_vision_tokens("t", shared.id, "model-a") == vision_tokens()
    with pytest.raises(NotFound):
        store.get_page("t", first_pages[0].id)
    store.replace_segment(dataclasses.replace(second, page_ids=[]), [])
    with pytest.raises(NotFound):
        store.get_page("t", shared.id)


def test_readers_see_old_pages_or_all_new_ones_never_a_mix(store_factory: StoreFactory) -> None:
    writer, reader = store_factory(), store_factory()
    record, pages = segment("t", n_pages=4)
    writer.put_segment(record, pages)
    stop = threading.Event()
    failures: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                current = reader.get_segment("t", record.id)
                got = reader.get_pages("t", record.id)
            except OpticalMemoryError as exc:
                failures.append(repr(exc))
                return
            tiers = {p.tier for p in got}
            if len(got) != 4 or len(tiers) != 1:
                failures.append(f"mixed read: {len(got)} pages, tiers {tiers}")
                return
            if current.tier not in {"small", "tiny", "base"}:
                failures.append(f"bad segment {current}")

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for round_ in range(60):
            tier = ("tiny", "base", "small")[round_ % 3]
            fresh = [page(size=8192, tier=tier) for _ in range(4)]
            writer.replace_segment(
                dataclasses.replace(record, tier=tier, page_ids=[p.id for p in fresh]), fresh
            )
    finally:
        stop.set()
        thread.join()
    assert failures == []


# -- vision tokens ------------------------------------------------------------------------


def test_vision_tokens_are_cached_per_model(store: Store) -> None:
    record, pages = segment("t")
    store.put_segment(record, pages)
    tokens = vision_tokens("model-a")
    store.put_vision_tokens("t", pages[0].id, tokens)
    assert store.get_vision_tokens("t", pages[0].id, "model-a") == tokens
    assert store.get_vision_tokens("t", pages[0].id, "model-b") is None
    assert store.get_vision_tokens("t", pages[1].id, "model-a") is None
    newer = vision_tokens("model-b", rows=111)
    store.put_vision_tokens("t", pages[0].id, newer)
    assert store.get_vision_tokens("t", pages[0].id, "model-b") == newer
    # One set per page: the new model's tokens replace the old model's.
    assert store.get_vision_tokens("t", pages[0].id, "model-a") is None


def test_vision_tokens_need_a_stored_page(store: Store) -> None:
    with pytest.raises(NotFound):
        store.put_vision_tokens("t", "no-such-page", vision_tokens())
    with pytest.raises(InvalidRecordError):
        store.put_vision_tokens("t", "p", b"raw bytes")  # type: ignore[arg-type]


# -- threads and tenants ------------------------------------------------------------------


def test_list_and_delete_threads(store: Store) -> None:
    store.append_turns("b-turns-only", [turn("x")])
    record, pages = segment("a-segments-only")
    store.put_segment(record, pages)
    store.append_turns("c", [turn("y")])
    assert store.list_threads() == ["a-segments-only", "b-turns-only", "c"]
    store.delete_thread("a-segments-only")
    store.delete_thread("never-existed")
    assert store.list_threads() == ["b-turns-only", "c"]
    assert store.list_segments("a-segments-only") == []
    with pytest.raises(NotFound):
        store.get_page("a-segments-only", pages[0].id)
    assert store.count_turns("c") == 1


def test_tenants_never_see_each_other(store: Store) -> None:
    other = store.with_tenant(store.tenant + "-other")
    assert other.tenant == store.tenant + "-other"
    secret = turn("tenant A's secret")
    store.append_turns("shared-name", [secret])
    record, pages = segment("shared-name")
    store.put_segment(record, pages)
    store.put_vision_tokens("shared-name", pages[0].id, vision_tokens())

    assert other.list_threads() == []
    assert other.get_turns("shared-name") == []
    assert other.count_turns("shared-name") == 0
    for read in (
        lambda: other.get_turn("shared-name", secret.id),
        lambda: other.get_segment("shared-name", record.id),
        lambda: other.get_pages("shared-name", record.id),
        lambda: other.get_page("shared-name", pages[0].id),
    ):
        with pytest.raises(NotFound):
            read()
    assert other.get_vision_tokens("shared-name", pages[0].id, "model-a") is None

    other.append_turns("shared-name", [turn("tenant B")])
    other.delete_thread("shared-name")
    assert store.get_turns("shared-name") == [secret]
    assert store.get_pages("shared-name", record.id) == pages
    # A tenant name that looks like a key pattern reaches nothing either.
    for sneaky in ("*", store.tenant[:-1] + "?", store.tenant + ":x"):
        assert store.with_tenant(sneaky).list_threads() == []


# -- retention and life cycle -------------------------------------------------------------


def test_retention_expires_segments_of_a_tier(store_factory: StoreFactory) -> None:
    store = store_factory(retention={"tiny": 0.5})
    short, short_pages = segment("t", tier="tiny")
    long, long_pages = segment("t", tier="small")
    store.put_segment(short, short_pages)
    store.put_segment(long, long_pages)
    store.put_vision_tokens("t", short_pages[0].id, vision_tokens())
    store.append_turns("t", [turn("turns are kept")])
    assert {s.id for s in store.list_segments("t")} == {short.id, long.id}
    time.sleep(1.2)
    assert store.list_segments("t") == [long]
    with pytest.raises(NotFound):
        store.get_segment("t", short.id)
    with pytest.raises(NotFound):
        store.get_page("t", short_pages[0].id)
    assert store.get_vision_tokens("t", short_pages[0].id, "model-a") is None
    assert store.get_pages("t", long.id) == long_pages
    assert store.count_turns("t") == 1


def test_a_shared_page_outlives_the_short_lived_segment(store_factory: StoreFactory) -> None:
    # A page id is a content hash: a segment kept forever and a short-lived one may list
    # the same page, which must live as long as the longest-lived segment listing it.
    store = store_factory(retention={"tiny": 0.5})
    shared = page()
    kept = Segment("t", turn_ids=["t1"], tier="small", page_ids=[shared.id])
    short = Segment("t", turn_ids=["t2"], tier="tiny", page_ids=[shared.id])
    store.put_segment(kept, [shared])
    store.put_vision_tokens("t", shared.id, vision_tokens())
    store.put_segment(short, [shared])
    time.sleep(1.2)
    assert store.list_segments("t") == [kept]
    assert store.get_pages("t", kept.id) == [shared]
    assert store.get_vision_tokens("t", shared.id, "model-a") == vision_tokens()


def test_retention_must_be_positive_seconds(store_factory: StoreFactory) -> None:
    for bad in ({"tiny": 0}, {"tiny": -1}, {"tiny": "1"}, {"": 5}):
        with pytest.raises(InvalidRecordError):
            store_factory(retention=bad)


def test_records_survive_reopening(store_factory: StoreFactory) -> None:
    first = store_factory()
    first.append_turns("t", [turn("persisted")])
    record, pages = segment("t")
    first.put_segment(record, pages)
    first.close()
    again = store_factory()
    assert again.get_turns("t")[0].message["content"] == "persisted"
    assert again.get_pages("t", record.id) == pages


def test_a_closed_store_says_so(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.close()
    with pytest.raises(StoreError):
        store.append_turns("t", [turn("x")])


def test_store_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    view = store.with_tenant("someone-else")
    assert isinstance(view, Store)
    assert (store.tenant, view.tenant) == (store.tenant, "someone-else")
