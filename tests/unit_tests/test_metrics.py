from __future__ import annotations

import pytest

from optical_memory.metrics import char_accuracy, is_mostly_cjk


def test_identical_texts_score_one() -> None:
    assert char_accuracy("the quick fox", "the quick fox") == 1.0


def test_both_empty_scores_one() -> None:
    assert char_accuracy("", "") == 1.0
    assert char_accuracy("  \n", "") == 1.0


def test_one_side_empty_scores_zero() -> None:
    assert char_accuracy("abc", "") == 0.0
    assert char_accuracy("", "abc") == 0.0


def test_one_substitution_in_thirteen_characters() -> None:
    assert char_accuracy("the quick fox", "the quick f0x") == pytest.approx(12 / 13)


def test_whitespace_runs_and_line_breaks_collapse() -> None:
    assert char_accuracy("the quick\nfox", "  the  quick fox \n") == 1.0


def test_dropped_spaces_count_in_latin_text() -> None:
    assert char_accuracy("a b c", "abc") == pytest.approx(1 - 2 / 5)


def test_ignore_whitespace_on_request() -> None:
    assert char_accuracy("a b c", "abc", ignore_whitespace=True) == 1.0


def test_cjk_reference_ignores_whitespace_by_default() -> None:
    assert char_accuracy("你好 世界", "你好世界") == 1.0
    assert char_accuracy("你好世界", "你 好 世 界") == 1.0


def test_cjk_whitespace_counts_when_asked() -> None:
    assert char_accuracy("你好世界", "你好 世界", ignore_whitespace=False) < 1.0


def test_nfc_normalisation() -> None:
    assert char_accuracy("caf\u00e9", "cafe\u0301") == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好世界 hi", True),
        ("hello 你好", False),
        ("", False),
        ("カタカナ", True),
        ("한국어", True),
    ],
)
def test_is_mostly_cjk(text: str, expected: bool) -> None:
    assert is_mostly_cjk(text) is expected
