"""Engine-independent post-processing: reading order, spaces, punctuation and tables.

RapidOCR returns one box per detected text line in no useful order, and its
recogniser (trained on Chinese) often drops the spaces between English words. This
module puts the lines in reading order (column by column, top to bottom) and puts the
spaces back from the positions of the recognised characters. In text that mixes CJK and
Latin it picks the full-width or ASCII form of each punctuation mark from the characters
around it, and it repairs the Markdown tables whose thin ``|`` rules the recogniser drops.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "TextLine",
    "fit_punctuation",
    "is_cjk_char",
    "join_lines",
    "repair_tables",
    "restore_spaces",
    "to_ascii_punctuation",
]

# Advance widths in em of DejaVu Sans, a typical proportional sans; other fonts differ by a
# few hundredths, well below the width of a space (0.32 em).
_WIDTH_GROUPS: tuple[tuple[float, str], ...] = (
    (0.27, "'"), (0.28, "ijl"), (0.29, "IJ"), (0.32, ",."), (0.34, "/:;\\|"), (0.35, "f"),
    (0.36, "-"), (0.39, "()[]t"), (0.40, "!"), (0.41, "r"), (0.46, '"'), (0.50, "*_`"),
    (0.52, "sz"), (0.53, "?"), (0.55, "c"), (0.56, "L"), (0.58, "Fk"), (0.59, "vxy"),
    (0.60, "P"), (0.61, "TYao"), (0.62, "e"), (0.63, "ESbdghnpqu"), (0.64, "$0123456789{}"),
    (0.66, "K"), (0.68, "AV"), (0.69, "BRXZ"), (0.70, "C"), (0.73, "U"), (0.75, "HN"),
    (0.77, "DG"), (0.78, "&"), (0.79, "OQ"), (0.82, "w"), (0.84, "#+<=>^~"), (0.86, "M"),
    (0.95, "%"), (0.97, "m"), (0.99, "W"), (1.00, "@"),
)  # fmt: skip
_ADVANCE = {char: width for width, chars in _WIDTH_GROUPS for char in chars}
_DEFAULT_ADVANCE = 0.6
# A gap this much wider than the two glyphs' advances is a space (a space is 0.32 em);
# measured best on 6-14 px DejaVu Sans pages (0.83 -> 0.99 read-back at 14 px).
SPACE_THRESHOLD_EM = 0.17
# Lines with at least this share of spaces kept theirs (the recogniser drops spaces in big
# glyphs, keeps them in small ones); restoring those anyway costs 0.99 -> 0.94 at 6 px.
_KEPT_SPACES_RATIO = 0.06


def is_cjk_char(char: str) -> bool:
    """Whether a character is CJK (Han, Kana, Hangul, CJK punctuation or full-width forms)."""
    code = ord(char)
    return (
        0x2E80 <= code < 0xA000  # radicals, CJK punctuation, kana, Han
        or 0xAC00 <= code < 0xD7B0  # Hangul syllables
        or 0xF900 <= code < 0xFB00  # compatibility ideographs
        or 0xFE30 <= code < 0xFE50  # CJK compatibility forms
        or 0xFF00 <= code < 0xFFF0  # full-width and half-width forms
        or 0x20000 <= code < 0x3134F  # Han extensions B-G
    )


@dataclass(frozen=True)
class TextLine:
    """One recognised text line with its box in page pixels.

    Attributes:
        text: The recognised text.
        left: Left edge of the line's box.
        top: Top edge.
        right: Right edge.
        bottom: Bottom edge.
    """

    text: str
    left: float
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        """Height of the box."""
        return self.bottom - self.top

    @property
    def middle(self) -> float:
        """Vertical centre of the box."""
        return (self.top + self.bottom) / 2


def restore_spaces(
    text: str, columns: Sequence[int], threshold_em: float = SPACE_THRESHOLD_EM
) -> str:
    """Re-insert the spaces a recogniser dropped between Latin words.

    ``columns`` are the recogniser's output positions of each character (CTC time
    steps), which lie near the glyph centres. The distance between two neighbours is
    compared with the two glyphs' expected half-advances, scaled by the line's typical
    pitch (the median ratio, which within-word pairs dominate); a surplus of more than
    ``threshold_em`` is a space. Pairs involving CJK characters never get one, and a
    line that already has spaces (one per 17 characters or more) is returned unchanged.

    Args:
        text: The recognised line.
        columns: One position per character of ``text``.
        threshold_em: Surplus gap, in em, above which a space is inserted.

    Returns:
        The line with spaces inserted.
    """
    if len(columns) != len(text) or len(text) < 3:
        return text
    if text.count(" ") >= _KEPT_SPACES_RATIO * len(text):
        return text
    pairs: list[tuple[int, float, float]] = []  # (index, gap in columns, expected gap in em)
    for i in range(len(text) - 1):
        left, right = text[i], text[i + 1]
        if left.isspace() or right.isspace() or is_cjk_char(left) or is_cjk_char(right):
            continue
        expected = (
            _ADVANCE.get(left, _DEFAULT_ADVANCE) + _ADVANCE.get(right, _DEFAULT_ADVANCE)
        ) / 2
        pairs.append((i, float(columns[i + 1] - columns[i]), expected))
    if len(pairs) < 2:
        return text
    columns_per_em = statistics.median(gap / expected for _, gap, expected in pairs)
    if columns_per_em <= 0:
        return text
    spaced = {i for i, gap, expected in pairs if gap / columns_per_em - expected > threshold_em}
    return "".join(char + " " if i in spaced else char for i, char in enumerate(text))


_FULLWIDTH_TO_ASCII = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULLWIDTH_TO_ASCII.update({0x3000: 0x20, 0x3002: 0x2E, 0x3001: 0x2C})


def to_ascii_punctuation(text: str) -> str:
    """Map full-width forms (``，`` ``（`` ``：``) and ideographic punctuation to ASCII.

    The Chinese recogniser often writes full-width punctuation in English lines.

    Args:
        text: A recognised line that is not CJK.

    Returns:
        The line with ASCII punctuation.
    """
    return text.translate(_FULLWIDTH_TO_ASCII)


# Marks with an ASCII and a full-width form that CJK text and Latin text both use.
_TO_FULLWIDTH = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}
_TO_HALFWIDTH = {full: half for half, full in _TO_FULLWIDTH.items()}


def _neighbour(text: str, index: int, step: int) -> str:
    """The nearest non-space character from ``index`` in direction ``step``, or ``""``."""
    index += step
    while 0 <= index < len(text) and text[index] == " ":
        index += step
    return text[index] if 0 <= index < len(text) else ""


def fit_punctuation(text: str) -> str:
    """Give each punctuation mark the width the characters around it call for.

    At 8 px the recogniser cannot tell ``，`` from ``,`` or ``：`` from ``:`` and writes
    either; in text that mixes scripts a whole-line choice is wrong for half the marks
    (``发货，物流单号`` next to ``14:32``). Chinese writing sets full-width marks next to
    CJK characters and ASCII ones between Latin letters and digits, so each mark of
    ``,:;?!()`` becomes full-width when its nearest non-space neighbour on either side is
    CJK (a CJK character or CJK punctuation) and ASCII otherwise. A ``.`` after a CJK
    character that is not followed by a letter or digit is a ``。``, and a ``。`` between
    Latin letters or digits a ``.``.

    Args:
        text: A recognised line.

    Returns:
        The line with each mark in the form its neighbours call for.
    """
    out = list(text)
    openers: list[int] = []
    for i, char in enumerate(text):
        half = _TO_HALFWIDTH.get(char, char)
        if half not in _TO_FULLWIDTH and half not in ".。":
            continue
        before, after = _neighbour(text, i, -1), _neighbour(text, i, 1)
        cjk_before = bool(before) and is_cjk_char(before)
        cjk_after = bool(after) and is_cjk_char(after)
        if half == ".":
            latin_after = after.isalnum() and not cjk_after
            out[i] = "。" if cjk_before and not latin_after else "."
        elif half == "。":  # a circle, not a dot: trust it unless it sits inside a number
            out[i] = "." if before.isalnum() and after.isalnum() and not cjk_after else "。"
        elif half == "(":
            # An opening bracket follows the text it annotates: 复制（replication）, f(x).
            out[i] = "（" if cjk_before or (not before and cjk_after) else "("
            openers.append(i)
        elif half == ")" and openers:
            out[i] = "）" if out[openers.pop()] == "（" else ")"  # a pair shares its form
        else:
            out[i] = _TO_FULLWIDTH[half] if cjk_before or cjk_after else half
    return "".join(out)


# What the recogniser makes of a table's vertical rule next to a cell.
_RULE_LOOKALIKES = "|丨｜Il1[]」「"
_RULE_ROW = re.compile(rf"^[\s{re.escape(_RULE_LOOKALIKES)}:：\-—_=+]*$")


def _is_rule_row(row: str) -> bool:
    """A Markdown table's header rule (``|---|---|``) as the recogniser reads it."""
    return row.count("-") + row.count("—") >= 3 and _RULE_ROW.match(row) is not None


def _cells(row: str) -> list[str]:
    cells = [cell.strip() for cell in row.strip().replace("｜", "|").split("|")]
    if cells and not cells[0]:
        cells = cells[1:]
    if cells and not cells[-1]:
        cells = cells[:-1]
    return cells


def repair_tables(text: str) -> str:
    """Put back the rules of Markdown tables that the recogniser lost.

    The thin ``|`` at the start and end of a table row sits apart from the cell text and
    is often cut off by the detector's box, and the header rule ``|---|---|`` is read as
    a ragged run of dashes or dropped. A run of at least two rows that each hold two or
    more ``|`` (or look like a header rule) is taken for a table: its rows get their
    outer ``|`` back and are set as ``| a | b |``, and the row after the first one is
    made the header rule with one ``---`` per column of the first row (inserted when it
    was lost).

    Args:
        text: Recognised text, one row per line.

    Returns:
        The text with its tables repaired; other lines are unchanged.
    """
    rows = text.split("\n")
    bars = [row.count("|") + row.count("｜") for row in rows]
    tabular = [n >= 2 or _is_rule_row(row) for n, row in zip(bars, rows, strict=True)]
    # A row that kept only one of its rules belongs to the table it borders.
    for k in [*range(1, len(rows)), *range(len(rows) - 2, -1, -1)]:
        for n in (k - 1, k + 1):
            if 0 <= n < len(rows) and tabular[n] and bars[k] >= 1:
                tabular[k] = True
    out: list[str] = []
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and tabular[j]:
            j += 1
        if j - i < 2 or all(_is_rule_row(row) for row in rows[i:j]):
            out.append(rows[i])
            i += 1
            continue
        header, body = rows[i], rows[i + 1 : j]
        if body and _is_rule_row(body[0]):
            body = body[1:]
        columns = max(1, len(_cells(header)))
        out.append("| " + " | ".join(_cells(header)) + " |")
        out.append("|" + "---|" * columns)
        out.extend("| " + " | ".join(_cells(row)) + " |" for row in body if not _is_rule_row(row))
        i = j
    return "\n".join(out)


def _split_columns(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    """Group lines into columns separated by vertical white gutters."""
    if len(lines) < 2:
        return [list(lines)]
    min_gutter = statistics.median(line.height for line in lines)
    spans = sorted(lines, key=lambda line: line.left)
    columns: list[list[TextLine]] = [[spans[0]]]
    reach = spans[0].right
    for line in spans[1:]:
        if line.left - reach >= min_gutter:
            columns.append([line])
        else:
            columns[-1].append(line)
        reach = max(reach, line.right)
    return columns


def _rows(column: Sequence[TextLine]) -> list[list[TextLine]]:
    """Group a column's boxes into rows (a detector may split one line into several boxes)."""
    rows: list[list[TextLine]] = []
    for line in sorted(column, key=lambda line: line.middle):
        last = rows[-1] if rows else None
        if last is not None and abs(line.middle - last[0].middle) < 0.5 * min(
            line.height, last[0].height
        ):
            last.append(line)
        else:
            rows.append([line])
    return [sorted(row, key=lambda line: line.left) for row in rows]


def join_lines(lines: Sequence[TextLine]) -> str:
    """Join recognised lines in reading order: column by column, top to bottom.

    Columns are found from white gutters in the boxes' horizontal extents (a gap at least
    one median line height wide). Boxes on the same row are joined left to right with a
    space, rows with a newline.

    Args:
        lines: Recognised lines in any order.

    Returns:
        The page's text, one row per line.
    """
    rows = [row for column in _split_columns(lines) for row in _rows(column)]
    return "\n".join(" ".join(line.text for line in row if line.text) for row in rows).strip()
