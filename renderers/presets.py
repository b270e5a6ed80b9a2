"""Render presets: glyph sizes and spacing per script and content kind.

Three presets ship; the first two are chosen from read-back measurements
(``benchmarks/compression_curve.py`` and the README's tables):

- ``dense``: the most text per page that the project's best CPU decoder still reads
  back at >= 0.97 character accuracy, with a margin: Latin prose at 6 px (RapidOCR with
  tuned detection), drawn at 2x and downsampled (direct, hinted rendering turns a
  6-7 px ``s`` into ``z``); Chinese prose at 8 px (RapidOCR, stock detection); Chinese
  that mixes in many Latin words, numbers and tables at 9 px (at 8 px its worst page
  read 0.94); code at 9 px monospace (symbols and ragged lines read worse than prose at
  every size).
- ``legible`` (the default): glyphs large enough for hosted multimodal models, which
  read reliably from about 12 px up once the provider's own downscaling is counted.
- ``vision``: DeepSeek-OCR memory pages: tight like ``dense``, with code and Chinese
  sized by the text tokens they hold rather than by what a CPU engine needs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from optical_memory.errors import InvalidSettingError, UnknownPresetError

__all__ = ["PRESETS", "Preset", "Script", "TypeSpec", "get_preset"]

Script = Literal["latin", "cjk", "cjk_mixed"]
Kind = Literal["prose", "code"]


@dataclass(frozen=True)
class TypeSpec:
    """How one script and content kind is set.

    Attributes:
        size_px: Em size in final-image pixels.
        line_pitch: Baseline-to-baseline distance, in ems (>= 1.15: tighter lines touch
            and OCR merges them).
    """

    size_px: float
    line_pitch: float = 1.15

    def __post_init__(self) -> None:
        if not (2 <= self.size_px <= 200):
            raise InvalidSettingError(f"size_px must be between 2 and 200, got {self.size_px!r}")
        if not (0.8 <= self.line_pitch <= 4):
            raise InvalidSettingError(
                f"line_pitch must be between 0.8 and 4 ems, got {self.line_pitch!r}"
            )


@dataclass(frozen=True)
class Preset:
    """Typesetting choices for a page.

    Attributes:
        name: Preset name.
        latin_prose: Type for Latin-script prose.
        latin_code: Type for code (always monospace).
        cjk_prose: Type for CJK-dominant text.
        cjk_mixed: Type for CJK text with many Latin words, digits or table rules (see
            :func:`~optical_memory.renderers.layout.is_mixed_cjk`); ``None``: as
            ``cjk_prose``.
        family: Proportional font family for prose.
        bold_family: Family for role labels in chat transcripts.
        mono_family: Monospace family for code.
        supersample: Draw at this factor and downsample (helps below about 8 px).
        margin: Page margin as a fraction of the canvas side.
        max_column_px: Widest text column; wider canvases are split into columns
            (narrow columns help OCR detection and eye tracking alike).
        paragraph_gap: Extra space between paragraphs and chat turns, in lines.
        word_space: Space between words in ems, or ``None`` for the font's own space
            (0.32 em for DejaVu Sans; at 6 px that leaves gaps OCR engines miss).
    """

    name: str
    latin_prose: TypeSpec
    latin_code: TypeSpec
    cjk_prose: TypeSpec
    cjk_mixed: TypeSpec | None = None
    family: str = "DejaVu Sans"
    bold_family: str = "DejaVu Sans:bold"
    mono_family: str = "DejaVu Sans Mono"
    supersample: int = 2
    margin: float = 0.01
    max_column_px: int = 640
    paragraph_gap: float = 0.0
    word_space: float | None = None

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.supersample <= 4, "supersample must be 1 to 4"),
            (0 <= self.margin < 0.25, "margin must be a fraction of the side below 0.25"),
            (self.max_column_px >= 64, "max_column_px must be at least 64"),
            (0 <= self.paragraph_gap <= 4, "paragraph_gap must be 0 to 4 lines"),
            (self.word_space is None or 0 < self.word_space <= 2, "word_space must be 0-2 ems"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidSettingError(f"preset {self.name!r}: {message}")

    def type_for(self, script: Script, kind: Kind) -> TypeSpec:
        """The type spec for a script and content kind."""
        if kind == "code":
            return self.latin_code
        if script == "cjk_mixed":
            return self.cjk_mixed or self.cjk_prose
        return self.cjk_prose if script == "cjk" else self.latin_prose

    def with_size(self, size_px: float) -> Preset:
        """A copy with every type spec scaled so Latin prose is ``size_px``."""
        factor = size_px / self.latin_prose.size_px
        return replace(
            self,
            name=f"{self.name}@{size_px:g}px",
            latin_prose=replace(self.latin_prose, size_px=size_px),
            latin_code=replace(self.latin_code, size_px=self.latin_code.size_px * factor),
            cjk_prose=replace(self.cjk_prose, size_px=self.cjk_prose.size_px * factor),
            cjk_mixed=None
            if self.cjk_mixed is None
            else replace(self.cjk_mixed, size_px=self.cjk_mixed.size_px * factor),
        )


PRESETS: dict[str, Preset] = {
    # Sizes from benchmarks/results/compression_curve.json (README): Latin prose at 6 px
    # read 0.981-0.983 (5.5 px: 0.974-0.976, too close to the bar); code under 9 px
    # stays below 0.97 for every engine; Chinese prose at 8 px read 0.979-0.987; Chinese
    # mixed with Latin, numbers and tables read 0.94-0.97 a page at 8 px, see README.
    "dense": Preset(
        name="dense",
        latin_prose=TypeSpec(6.0, 1.15),
        latin_code=TypeSpec(9.0, 1.15),
        cjk_prose=TypeSpec(8.0, 1.15),
        cjk_mixed=TypeSpec(9.0, 1.15),
        supersample=2,
        margin=0.01,
        word_space=0.4,
    ),
    "legible": Preset(
        name="legible",
        latin_prose=TypeSpec(13.0, 1.3),
        latin_code=TypeSpec(12.0, 1.3),
        cjk_prose=TypeSpec(14.0, 1.3),
        supersample=2,
        margin=0.02,
        paragraph_gap=0.3,
    ),
    # For DeepSeek-OCR's encoder, not a CPU OCR engine: its legibility is about 10 text
    # tokens per vision token (paper, Table 2), so code and Chinese get the page area the
    # tokens they hold need (code packs ~3 characters a token against prose's ~4; a Han
    # character is about a token), not the extra size a CPU engine needs for symbols.
    # Spacing as tight as dense; the font's own word space.
    "vision": Preset(
        name="vision",
        latin_prose=TypeSpec(10.7, 1.15),
        latin_code=TypeSpec(11.5, 1.15),
        cjk_prose=TypeSpec(14.0, 1.15),
        cjk_mixed=TypeSpec(14.0, 1.15),
        supersample=2,
        margin=0.01,
    ),
}


def get_preset(preset: str | Preset) -> Preset:
    """Return a preset by name (``"dense"``, ``"legible"``) or pass a ``Preset`` through.

    Raises:
        UnknownPresetError: No preset has that name (or ``preset`` is not a str).
    """
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset.strip().lower()]
    except (KeyError, AttributeError):
        names = ", ".join(sorted(PRESETS))
        raise UnknownPresetError(f"unknown preset {preset!r}; expected one of: {names}") from None
