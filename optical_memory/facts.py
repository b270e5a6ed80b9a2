"""The fact sheet: exact strings of a segment that a blurry page must not get wrong.

OCR and vision models misread exactly the strings that matter most in a conversation:
numbers, identifiers, dates, amounts, e-mail addresses, URLs, names. A segment keeps a
short list of them, copied verbatim from its turns, and a context shows that list as text
beside the pages. The rules are lexical and deterministic (no model). Candidates are
ranked by how much a misread would cost and how likely it is: identifiers, amounts,
dates, addresses and e-mail addresses first (digits, currency signs and look-alike
letters are what small-text OCR gets wrong), then names and code identifiers, then lone
capitalised words; the best ``limit`` are kept in order of appearance.

Example:
    >>> extract_facts("Ship order A-7731-QX to Dr. Amara Okafor by 2025-03-14, please.")
    ['A-7731-QX', 'Dr. Amara Okafor', '2025-03-14']
"""

from __future__ import annotations

import re

__all__ = ["extract_facts"]

_MONTH = (
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"  # January, Jan.
)
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Way|Lane|Ln|Close|Drive|Dr|Boulevard|Blvd|Place|Pl"
    r"|Square|Sq|Court|Ct|Terrace|Crescent|Gardens|Row|Hill|Park|Parade|Quay|Strasse|Straße)"
)
# (pattern, rank): a higher rank is kept first when a segment has more than ``limit``.
_RANKED = (
    (r"https?://[^\s<>()\"']+[^\s<>()\"'.,;:!?]", 5),  # URLs
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", 5),  # e-mail addresses
    # dates: "December 4, 2025", "4 December 2025", "Dec 4"
    (rf"\b{_MONTH}\s\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s\d{{4}})?\b", 5),
    (rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s{_MONTH}(?:,?\s\d{{4}})?\b", 5),
    # street addresses: "128 Birchmont Street"
    (rf"\b\d{{1,5}}[A-Za-z]?\s(?:[A-Z][a-z]+\s){{1,3}}{_STREET}\b", 5),
    # amounts and numbers with thousands separators: "€7,355.42", "59,827", "$1.2M"
    (r"[#$€£¥]?\d{1,3}(?:[,\u202f\u00a0 ]\d{3})+(?:\.\d+)?[%kKmMbB]?", 4),
    # Chinese names before a title or form of address: "马明涛先生", "李老师"
    (r"[\u4e00-\u9fff]{2,3}(?=先生|女士|小姐|老师|博士|教授|经理|医生|同学)", 4),
    (r"`[^`\n]{2,60}`", 3),  # inline code
    # a word with a digit in it: ids, versions, ISO dates, times, phone numbers
    (r"[#$€£¥]?[\w./:+-]*\d[\w./:+%-]*", 4),
    # snake_case, camelCase, dotted.names, call()
    (r"\b[A-Za-z_]\w*(?:_\w+|[a-z][A-Z]\w*|\.[A-Za-z_]\w+)+(?:\(\))?", 2),
    # capitalised runs: "Amara Okafor", "Dr. Amara Okafor", "Lisbon"
    (r"\b(?:(?:Dr|Mr|Mrs|Ms|Prof|St)\.\s)?[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*", 1),
)
_FACT = re.compile("|".join(f"(?P<r{i}>{pattern})" for i, (pattern, _) in enumerate(_RANKED)))
_RANK = [rank for _, rank in _RANKED]
# A capitalised word right after these starts a sentence or a list item: no sign of a name.
_SENTENCE_START = re.compile(r"(?:^|[.!?:\n]\s*|[\"'(]\s*|^\s*[-*•]\s+|\n\s*[-*•\d.]+\s+)$")
# Capitalised words too common to be names on their own.
_COMMON_WORDS = (
    "I I'm I've I'll I'd OK Okay Yes No Hi Hello Thanks Thank Sure Please The A An And But "
    "Or So If Then This That These Those It Its We You He She They My Our Your Their What "
    "When Where Why How Which Who User Assistant Tool System Monday Tuesday Wednesday "
    "Thursday Friday Saturday Sunday"
)
_COMMON = frozenset(_COMMON_WORDS.split())


def _starts(text: str, index: int) -> bool:
    """Whether ``index`` starts a sentence or list item (judged on the 12 characters before
    it; the "x" keeps ``^`` from matching inside the text)."""
    before = text[:index] if index <= 12 else "x" + text[index - 12 : index]
    return _SENTENCE_START.search(before) is not None


def extract_facts(text: str, limit: int = 12) -> list[str]:
    """Up to ``limit`` exact strings from ``text``: the highest ranked (see the module
    docstring), in order of first appearance, no repeats.

    Args:
        text: A segment's text.
        limit: The most strings to return (0 returns none).

    Returns:
        Substrings of ``text``, unchanged except for trailing punctuation.
    """
    if limit <= 0:
        return []
    found: dict[str, tuple[int, int]] = {}  # value -> (rank, position)
    for match in _FACT.finditer(text):
        group = match.lastgroup or "r0"
        rank = _RANK[int(group[1:])]
        value = match.group(0).rstrip(".,;:!?-/ ")
        if len(value) < 3 or value in found:
            continue
        lone_word = rank == 1 and len(value.split()) == 1
        if lone_word and (value in _COMMON or _starts(text, match.start())):
            continue  # a lone capitalised word starting a sentence is no name
        if value.isdigit() and len(value) < 3:
            continue
        found[value] = (rank, match.start())
    best = sorted(found.items(), key=lambda item: (-item[1][0], item[1][1]))[:limit]
    return [value for value, _ in sorted(best, key=lambda item: item[1][1])]
