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


def _normalise(text: str, *, drop_whitespace: bool) -> str:
    text = unicodedata.normalize("NFC", text)
    if drop_whitespace:
        return _WHITESPACE.sub("", text)
    return _WHITESPACE.sub(" ", text).strip()


def char_accuracy(
    reference: str, hypothesis: str, *, ignore_whitespace: bool | None = None
) -> float:
    """One minus the normalised Levenshtein distance between two texts.

    Both texts are NFC-normalised and their runs of whitespace collapse to one space
    (leading and trailing whitespace is stripped), so line breaks versus spaces do not
    count as errors.

    Args:
        reference: The text that was rendered.
        hypothesis: The text that was read back.
        ignore_whitespace: Drop all whitespace before comparing. ``None`` (the default)
            decides from the reference: whitespace is ignored when it is mostly CJK,
            where spaces carry no meaning.

    Returns:
        A score in ``[0, 1]``; ``1.0`` when the texts match (including both empty).
    """
    if ignore_whitespace is None:
        ignore_whitespace = is_mostly_cjk(reference)
    ref = _normalise(reference, drop_whitespace=ignore_whitespace)
    hyp = _normalise(hypothesis, drop_whitespace=ignore_whitespace)
    return 1.0 - float(Levenshtein.normalized_distance(ref, hyp))
