"""The fact sheet: exact strings of a segment that a blurry page must not get wrong.

OCR and vision models misread exactly the strings that matter most in a conversation:
numbers, identifiers, dates, amounts, e-mail addresses, URLs, names. A segment keeps a
short list of them, copied verbatim from its turns, and a context shows that list as text
beside the pages. The rules are lexical and deterministic (no model): a string is kept
when it holds a digit, looks like code or an address, or is a run of capitalised words
that does not start a sentence.

Example:
    >>> extract_facts("Ship order A-7731-QX to Dr. Amara Okafor by 2025-03-14, please.")
    ['A-7731-QX', 'Dr. Amara Okafor', '2025-03-14']
"""

from __future__ import annotations

import re

__all__ = ["extract_facts"]

_PATTERNS = (
    r"https?://[^\s<>()\"']+[^\s<>()\"'.,;:!?]",  # URLs
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail addresses
    r"`[^`\n]{2,60}`",  # inline code
    # a word with a digit in it: amounts, ids, versions, dates, times, phone numbers
    r"[#$€£¥]?[\w./:+-]*\d[\w./:+%-]*",
    # snake_case, camelCase, dotted.names, call()
    r"\b[A-Za-z_]\w*(?:_\w+|[a-z][A-Z]\w*|\.[A-Za-z_]\w+)+(?:\(\))?",
    # capitalised runs: "Amara Okafor", "Dr. Amara Okafor", "Lisbon"
    r"\b(?:(?:Dr|Mr|Mrs|Ms|Prof|St)\.\s)?[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*",
)
_FACT = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))
_SENTENCE_START = re.compile(r"(?:^|[.!?:\n]\s*|[\"'(]\s*)$")
# Capitalised words too common to be names on their own.
_COMMON_WORDS = (
    "I I'm I've I'll I'd OK Okay Yes No Hi Hello Thanks Thank Sure Please The A An And But "
    "Or So If Then This That These Those It Its We You He She They My Our Your Their What "
    "When Where Why How Which Who User Assistant Tool System Monday Tuesday Wednesday "
    "Thursday Friday Saturday Sunday"
)
_COMMON = frozenset(_COMMON_WORDS.split())


def extract_facts(text: str, limit: int = 12) -> list[str]:
    """Up to ``limit`` exact strings from ``text``, in order of first appearance, no repeats.

    Args:
        text: A segment's text.
        limit: The most strings to return (0 returns none).

    Returns:
        Substrings of ``text``, unchanged except for trailing punctuation.
    """
    found: list[str] = []
    seen: set[str] = set()
    for match in _FACT.finditer(text):
        if len(found) >= limit:
            break
        value = match.group(0).rstrip(".,;:!?-/")
        if len(value) < 3 or value in seen:
            continue
        if value[0].isupper() and not any(ch.isdigit() for ch in value):
            words = value.split()
            if len(words) == 1 and (
                value in _COMMON or _SENTENCE_START.search(text[: match.start()])
            ):
                continue  # a lone capitalised word starting a sentence is no name
        if value.isdigit() and len(value) < 2:
            continue
        seen.add(value)
        found.append(value)
    return found
