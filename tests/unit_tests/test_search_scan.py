"""The Redis scan (optical_memory/store/search_scan.py): lines in one buffer, ranked with
numpy, offline."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from optical_memory.store.search import SearchQuery, scan_text, search_tokens
from optical_memory.store.search_scan import ScanTexts, rank, read_lines, text_lines


def ranked(query: str, docs: list[tuple[int, str]], limit: int = 10) -> list[tuple[int, int]]:
    found = rank(SearchQuery.parse(query), ScanTexts.from_texts(docs), limit)
    return [(index, int(score)) for index, score in found]


def test_lines_name_their_position_and_malformed_ones_are_flagged() -> None:
    buffer = text_lines({3: " a ", 12: " b  c "}) + b"x\t d \n\t e \n4\t f \t g \n5 no tab\n"
    positions, starts, ends, ok = read_lines(buffer)
    assert ok.tolist() == [True, True, False, False, False, False]
    assert positions[:2].tolist() == [3, 12]
    assert [buffer[s:e] for s, e in zip(starts[:2], ends[:2], strict=True)] == [b" a ", b" b  c "]


def test_a_positions_last_line_wins_and_the_window_filters() -> None:
    buffer = b"1\t old \n2\t two \n1\t new \n9\t far \n"
    texts, bad = ScanTexts.from_lines(buffer, range(0, 5))
    assert texts.indexes.tolist() == [2, 1] and not len(bad)
    assert (texts.text(1), texts.text(2), texts.text(9)) == (" new ", " two ", None)


def test_tiers_then_relevance_then_newest() -> None:
    docs = [
        (0, scan_text(["red", "green", "blue"])),
        (1, scan_text(["blue", "green", "red"])),
        (2, scan_text(["red"])),
        (3, scan_text(["red", "green", "blue"])),
        (4, scan_text([])),
    ]
    assert ranked("red green blue", docs) == [(3, 2), (0, 2), (1, 1), (2, 0)]
    assert ranked("red green blue", docs, 2) == [(3, 2), (0, 2)]
    assert ranked("RED", docs) == ranked("red", docs)
    assert ranked("purple", docs) == [] and ranked("", docs) == []
    assert ranked("red", []) == []


def test_a_phrase_is_counted_in_the_texts_asked_about() -> None:
    texts = ScanTexts.from_texts([(0, scan_text(["a", "b", "a", "b"])), (1, scan_text(["a"]))])
    among = np.array([1, 0], np.int64)
    assert texts.occurrences(["a", "b"], among).tolist() == [0, 2]
    assert texts.occurrences(["b", "a"]).tolist() == [1, 0]
    assert texts.occurrences(["a", "bb"]).tolist() == [0, 0]


def test_adjacent_and_repeated_tokens_all_count() -> None:
    once, twice = scan_text(["a", "b", "c", "d"]), scan_text(["a", "a", "b", "c"])
    texts = ScanTexts.from_texts([(0, once), (1, twice)])
    assert texts.occurrences(["a"]).tolist() == [1, 2]
    assert texts.occurrences(["a", "a"]).tolist() == [0, 1]
    scores = dict(rank(SearchQuery.parse("a"), texts, 2))
    assert scores[1] > scores[0]


def test_a_token_never_matches_inside_another_or_a_position() -> None:
    docs = [(12, scan_text(["x12", "12x"])), (7, scan_text(["12"]))]
    assert ranked("12", docs) == [(7, 2)]


@given(
    st.dictionaries(
        st.integers(0, 10**12),
        st.lists(st.sampled_from(["a", "b", "光", "é", "42"]), max_size=5).map(scan_text),
        max_size=20,
    )
)
def test_lines_round_trip(texts: dict[int, str]) -> None:
    positions, starts, ends, ok = read_lines(text_lines(texts))
    buffer = text_lines(texts)
    assert ok.all()
    read = {
        int(p): buffer[s:e].decode()
        for p, s, e in zip(positions.tolist(), starts.tolist(), ends.tolist(), strict=True)
    }
    assert read == texts


@given(st.lists(st.sampled_from(["a", "b", "c", "光", "é"]), min_size=1, max_size=12), st.data())
def test_a_slice_of_a_turn_finds_it_as_a_phrase(tokens: list[str], data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(tokens) - 1))
    stop = data.draw(st.integers(start + 1, len(tokens)))
    docs = [(0, scan_text(search_tokens(" ".join(tokens)))), (1, scan_text(["z"]))]
    assert ranked(" ".join(tokens[start:stop]), docs)[0] == (0, 2)


def test_many_and_few_occurrences_are_located_alike() -> None:
    texts = [(i, scan_text(["w", "x"] if i % 10 == 0 else ["x"])) for i in range(9000)]
    scan = ScanTexts.from_texts(texts)
    many = scan.occurrences(["x"])  # 9,000 matches: located with one split
    few = scan.occurrences(["w"])  # 900: located one find() at a time
    assert many.tolist() == [1] * 9000
    assert few.tolist() == [1 if i % 10 == 0 else 0 for i in range(9000)]
    assert scan.occurrences(["w", "x"]).sum() == 900


def test_lengths_count_tokens() -> None:
    texts = ScanTexts.from_texts(
        [(0, scan_text(["a", "bb", "c"])), (1, scan_text([])), (2, scan_text(["光"]))]
    )
    assert texts.lengths(np.arange(3)).tolist() == [3, 0, 1]
    assert texts.average_length() == 4 / 3
