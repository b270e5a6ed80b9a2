"""How well a page was read back: character accuracy against the text that was rendered.

Example:
    >>> from optical_memory.metrics import char_accuracy
    >>> char_accuracy("the quick fox", "the quick  f0x")
    0.9230769230769231
"""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import Levenshtein

__all__ = ["char_accuracy", "is_mostly_cjk"]

_WHITESPACE = re.compile(r"\s+")
# Han (with extensions and compatibility ideographs), Kana, Hangul syllables and jamo.
_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)

# Whitespace touching a CJK character or CJK punctuation: optional in CJK typography
# ("用 Redis 存储" and "用Redis存储" are the same text), so it never counts.
_CJK_OR_MARK = (
    "\u1100-\u11ff\u3000-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f"
)
_CJK_SPACE = re.compile(rf"(?<=[{_CJK_OR_MARK}])\s+|\s+(?=[{_CJK_OR_MARK}])")


def is_mostly_cjk(text: str) -> bool:
    """Whether more than half of the non-space characters are Han, Kana or Hangul.

    Args:
        text: Any text.

    Returns:
        ``True`` if CJK characters are the majority; ``False`` for empty text.
    """
    visible = _WHITESPACE.sub("", text)
    if not visible:
        return False
    return len(_CJK.findall(visible)) * 2 > len(visible)


def _normalise(text: str, *, drop_whitespace: bool | None) -> str:
    """NFC, then whitespace dropped (True), collapsed (False) or, for None, dropped next
    to CJK and collapsed elsewhere."""
    text = unicodedata.normalize("NFC", text)
    if drop_whitespace:
        return _WHITESPACE.sub("", text)
    if drop_whitespace is None:
        text = _CJK_SPACE.sub("", text)
    return _WHITESPACE.sub(" ", text).strip()


def char_accuracy(
    reference: str, hypothesis: str, *, ignore_whitespace: bool | None = None
) -> float:
    """One minus the normalised Levenshtein distance between two texts.

    Both texts are NFC-normalised and their runs of whitespace collapse to one space
    (leading and trailing whitespace is stripped), so line breaks versus spaces do not
    count as errors. By default whitespace next to a CJK character or CJK punctuation is
    dropped: CJK typography may or may not set a space between ``用`` and ``Redis``, so
    it is not text (counting it scored a page of mixed Chinese and English 0.81 where
    the same read-back scored 0.94 with whitespace ignored).

    Args:
        reference: The text that was rendered.
        hypothesis: The text that was read back.
        ignore_whitespace: Drop all whitespace before comparing. ``None`` (the default)
            decides from the reference: all whitespace is ignored when it is mostly
            CJK, where spaces carry no meaning; otherwise only whitespace touching CJK
            is, and spaces between Latin words count. ``False`` counts all of it.

    Returns:
        A score in ``[0, 1]``; ``1.0`` when the texts match (including both empty).
    """
    if ignore_whitespace is None and is_mostly_cjk(reference):
        ignore_whitespace = True
    ref = _normalise(reference, drop_whitespace=ignore_whitespace)
    hyp = _normalise(hypothesis, drop_whitespace=ignore_whitespace)
    return 1.0 - float(Levenshtein.normalized_distance(ref, hyp))
