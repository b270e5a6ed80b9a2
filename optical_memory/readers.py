"""Reader profiles: how one target model bills a page image and how small a text it reads.

A :class:`ReaderProfile` bundles, for one model family:

- its text tokenizer (an offline tiktoken encoding, see :mod:`optical_memory.tokens`);
- its :class:`ImageRule`: the provider's own resize and the tokens it bills for an image;
- its legibility limit ``min_text_px``, judged on the image *after* that resize;
- the page it is shown: ``page_side`` and the ``font_px`` that keeps glyphs legible once
  the provider has resized the page, and the decay ladder ``tiers``.

::

    ImageRule (ABC)         effective_size(w, h), tokens(w, h)
      DeepSeekOCRRule       fixed tokens per mode (64/100/256/400), Gundam tiles
      OpenAITileRule        base + per-tile x 512-px tiles after fit-2048 / short-768
      OpenAIPatchRule       32-px patches (capped, with OpenAI's downscale) x multiplier
      AnthropicRule         w*h/750 after shrinking to 1568 px / about 1.2 MP
      GeminiRule            Gemini 1.5/2.x: 258, or 258 per 768-px tile
      GeminiBudgetRule      Gemini 3: fixed budget per media_resolution
      QwenVLRule            one token per 28x28 px after smart resize, plus 2 markers
      NoImageRule           text-only readers: refuses images

Formulas and worked examples come from the providers' published pricing rules as
collected in the project's ``reference/image-token-costs.md``. Where a provider leaves a
step unpublished, the rule's docstring says what is assumed; calibrate against the
usage field the API returns.

Page geometry per reader (DESIGN §6): tokens per page is about
``0.28 * (page_px / font_px) ** 2`` for English prose (:func:`estimate_page_tokens`), so
the text a page holds depends only on the size the model actually sees and the smallest
glyph it reads there. Each shipped profile's ``page_side`` is the tier side with the
fewest image tokens per legible text token after its provider's resize; ties go to the
side that leaves a decay ladder whose every step is cheaper (``gemini-3`` stays at 1024
while its working resolution is unpublished), and ``openai`` takes 1024 over the cheaper
fresh 512 page because only a page larger than one tile can fade to a cheaper one.
Fresh pages at ``font_px``, English prose:

==================  ====  =======  ============  ===========  =====
profile             side  font px  image tokens  text tokens  ratio
==================  ====  =======  ============  ===========  =====
deepseek-ocr        640   10.7     100           1,002        10.0
deepseek-ocr-tiny   512   10.7     64            641          10.0
deepseek-ocr-base   1024  10.7     256           2,564        10.0
deepseek-ocr-large  1280  10.7     400           4,007        10.0
openai              1024  16       765           1,147        1.5
openai-low          512   16       85            287          3.4
openai-patch        1024  12       1,659         2,039        1.2
anthropic           1024  12       1,399         2,039        1.5
gemini              1280  12       1,032         3,186        3.1
gemini-3            1024  12       1,120         2,039        1.8
qwen2.5-vl          1024  11.87    1,371         2,084        1.5
==================  ====  =======  ============  ===========  =====

Example:
    >>> from optical_memory import readers
    >>> claude = readers.get("anthropic")
    >>> claude.image_tokens(1092, 1092)
    1590
    >>> readers.break_even(claude, text_tokens=2000, width=1024, height=1024)
    True
"""

from __future__ import annotations

import abc
import itertools
import math
import threading
from dataclasses import dataclass, field
from typing import Literal

from optical_memory.errors import InvalidSettingError, UnknownReader
from optical_memory.renderers.tiers import Tier
from optical_memory.tokens import get_token_counter

__all__ = [
    "PROSE_TOKEN_DENSITY",
    "AnthropicRule",
    "DeepSeekOCRRule",
    "GeminiBudgetRule",
    "GeminiRule",
    "ImageRule",
    "NoImageRule",
    "OpenAIPatchRule",
    "OpenAITileRule",
    "QwenVLRule",
    "ReaderProfile",
    "UnknownReader",
    "break_even",
    "estimate_page_tokens",
    "get",
    "names",
    "register",
]

PROSE_TOKEN_DENSITY = 0.28
"""English prose tokens per square em: a page holds about this x (side / font_px)**2."""


def estimate_page_tokens(width: int, height: int, font_px: float) -> float:
    """Estimate the text tokens of English prose that fill a page (DESIGN §6 rule of thumb).

    Args:
        width: Page width in pixels.
        height: Page height in pixels.
        font_px: Glyph (em) size the page is set at, in the same pixels.

    Returns:
        About ``0.28 * width * height / font_px**2``. Code and CJK text differ.
    """
    if font_px <= 0:
        raise InvalidSettingError(f"font_px must be positive, got {font_px!r}")
    return PROSE_TOKEN_DENSITY * width * height / font_px**2


def _check_size(width: int, height: int) -> None:
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidSettingError(
                f"image size must be two positive integers, got {(width, height)!r}"
            )


def _fit(width: int, height: int, scale: float) -> tuple[int, int]:
    # Never below one pixel: a 1 x 4000 strip shrunk by 0.3 is still an image.
    return max(1, math.floor(width * scale + 1e-9)), max(1, math.floor(height * scale + 1e-9))


class ImageRule(abc.ABC):
    """How a provider resizes an image and what it bills for it."""

    @abc.abstractmethod
    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        """The ``(width, height)`` the model sees after the provider's resize."""

    @abc.abstractmethod
    def tokens(self, width: int, height: int) -> int:
        """Tokens billed for one image of ``width`` x ``height`` pixels."""

    def detail_for(self, width: int, height: int) -> Literal["high", "low"] | None:
        """The OpenAI ``detail`` an image of this size is priced at; ``None`` for
        providers without that setting."""
        return None


_DeepSeekMode = Literal["tiny", "small", "base", "large", "gundam"]
# side, vision tokens, padded (True) or stretched to the square (False); paper Table 1.
_DEEPSEEK_MODES: dict[str, tuple[int, int, bool]] = {
    "tiny": (512, 64, False),
    "small": (640, 100, False),
    "base": (1024, 256, True),
    "large": (1280, 400, True),
}
_GUNDAM_TILE, _GUNDAM_TILE_TOKENS = 640, 100


@dataclass(frozen=True)
class DeepSeekOCRRule(ImageRule):
    """DeepSeek-OCR's modes: a fixed vision-token count per mode.

    Tiny (512 px, 64 tokens) and Small (640, 100) stretch any image to their square;
    Base (1024, 256) and Large (1280, 400) fit it inside theirs and pad. Gundam reads a
    1024 px padded global view (256) plus 640 px tiles (100 each), chosen by the
    InternVL-style rule of the official code: 2 to ``max_tiles`` tiles whose grid aspect
    is closest to the image's; an image within 640 x 640 gets no tiles. The counts are the
    paper's "vision tokens"; the decoder's context also holds one newline slot per row and
    a separator (Small: 111 slots).

    Attributes:
        mode: ``"tiny"``, ``"small"``, ``"base"``, ``"large"`` or ``"gundam"``.
        downshift: Read an image that fits a smaller mode's canvas in that mode, as the
            memory encodes a decayed page at its tier (a 512 px page costs 64, not 100).
            False: every image is read in ``mode``.
        max_tiles: Gundam's tile cap (9 in the Hugging Face runner, 6 in vLLM's).
    """

    mode: _DeepSeekMode = "small"
    downshift: bool = True
    max_tiles: int = 9

    def __post_init__(self) -> None:
        if self.mode not in (*_DEEPSEEK_MODES, "gundam"):
            known = ", ".join((*_DEEPSEEK_MODES, "gundam"))
            raise InvalidSettingError(f"unknown DeepSeek-OCR mode {self.mode!r}; known: {known}")
        if not 2 <= self.max_tiles <= 64:
            raise InvalidSettingError(f"max_tiles must be 2 to 64, got {self.max_tiles!r}")

    def read_mode(self, width: int, height: int) -> str:
        """The mode an image of this size is read in (see ``downshift``)."""
        _check_size(width, height)
        longest = max(width, height)
        top = _GUNDAM_TILE if self.mode == "gundam" else _DEEPSEEK_MODES[self.mode][0]
        if self.downshift:
            for name, (side, _, _) in _DEEPSEEK_MODES.items():  # smallest canvas first
                if longest <= side <= top:
                    return name
        if self.mode == "gundam" and longest <= _GUNDAM_TILE:
            return "base"  # no tiles: only the padded global view is read
        return self.mode

    def tiles(self, width: int, height: int) -> tuple[int, int]:
        """Gundam's tile grid ``(across, down)``; ``(0, 0)`` when no tiles are cut."""
        if self.read_mode(width, height) != "gundam":
            return (0, 0)
        aspect = width / height
        grids = sorted(
            (
                (i, j)
                for i in range(1, self.max_tiles + 1)
                for j in range(1, self.max_tiles + 1)
                if 2 <= i * j <= self.max_tiles
            ),
            key=lambda g: (g[0] * g[1], g),
        )
        best, best_diff = grids[0], math.inf
        for grid in grids:
            diff = abs(aspect - grid[0] / grid[1])
            if diff < best_diff:
                best, best_diff = grid, diff
            elif diff == best_diff and width * height > 0.5 * _GUNDAM_TILE**2 * grid[0] * grid[1]:
                best = grid
        return best

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        mode = self.read_mode(width, height)
        if mode == "gundam":
            across, down = self.tiles(width, height)
            return (across * _GUNDAM_TILE, down * _GUNDAM_TILE)
        side, _, padded = _DEEPSEEK_MODES[mode]
        if not padded:
            return (side, side)
        return _fit(width, height, side / max(width, height))

    def tokens(self, width: int, height: int) -> int:
        mode = self.read_mode(width, height)
        if mode == "gundam":
            across, down = self.tiles(width, height)
            return _DEEPSEEK_MODES["base"][1] + _GUNDAM_TILE_TOKENS * across * down
        return _DEEPSEEK_MODES[mode][1]


@dataclass(frozen=True)
class OpenAITileRule(ImageRule):
    """OpenAI's tile-based models (GPT-4o, 4.1, 4.5, 5, o1/o3, 4o-mini).

    High detail: fit inside 2048 x 2048, shrink so the short side is 768 px, then bill
    ``base + per_tile * tiles`` for 512 px tiles. Low detail bills ``base`` for a
    512 x 512 view. Published base / per-tile pairs: GPT-4o/4.1/4.5 85/170 (the default),
    GPT-5/5.1 70/140, o1/o3 75/150, GPT-4o-mini 2,833/5,667 (inflated to hold its
    price), computer-use-preview 65/129.

    Whether images whose short side is under 768 px are scaled *up* is disputed;
    OpenAI's worked examples (512 x 512 = 255 tokens) say no, hence ``upscale=False``.

    An image that fits a 512 px square loses nothing at low detail (its 512 px view is
    the image itself) and costs ``base`` instead of ``base + per_tile``; with
    ``small_as_low`` such images are priced (and :meth:`detail_for` sends them) at low.

    Attributes:
        detail: ``"high"`` or ``"low"``.
        base: Tokens billed for every image.
        per_tile: Tokens per 512 px tile (high detail only).
        upscale: Also scale short sides under 768 px up to 768.
        small_as_low: At high detail, send images within 512 x 512 at low detail.
    """

    detail: Literal["high", "low"] = "high"
    base: int = 85
    per_tile: int = 170
    upscale: bool = False
    small_as_low: bool = False

    def detail_for(self, width: int, height: int) -> Literal["high", "low"]:
        """The ``detail`` to send an image of this size at."""
        if self.detail == "low" or (self.small_as_low and max(width, height) <= 512):
            return "low"
        return "high"

    def __post_init__(self) -> None:
        if self.detail not in ("high", "low"):
            raise InvalidSettingError(f"detail must be 'high' or 'low', got {self.detail!r}")
        if self.base < 0 or self.per_tile < 0:
            raise InvalidSettingError("base and per_tile must not be negative")

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        _check_size(width, height)
        if self.detail == "low":
            return _fit(width, height, min(1.0, 512 / max(width, height)))
        fit = min(1.0, 2048 / max(width, height))
        short = min(width, height) * fit
        if short > 768 or self.upscale:
            fit *= 768 / short
        return max(1, round(width * fit)), max(1, round(height * fit))

    def tokens(self, width: int, height: int) -> int:
        if self.detail_for(width, height) == "low":
            _check_size(width, height)
            return self.base
        seen_w, seen_h = self.effective_size(width, height)
        return self.base + self.per_tile * math.ceil(seen_w / 512) * math.ceil(seen_h / 512)


@dataclass(frozen=True)
class OpenAIPatchRule(ImageRule):
    """OpenAI's patch-based models (GPT-4.1-mini/nano, o4-mini, GPT-5-mini/nano).

    Count 32 px patches, ``ceil(w/32) * ceil(h/32)``. Above ``max_patches`` the image is
    shrunk so it fits the budget, then shrunk again so whole patches span its width, and
    the patches are recounted with floors. Tokens are the patches times a per-model
    multiplier, rounded up: 1.62 for 4.1-mini and 5-mini (the default), 2.46 for 4.1-nano
    and 5-nano, 1.72 for o4-mini. Later 5.x models reportedly use 1.0-1.2 with larger
    budgets (2,500), and OpenAI's docs are ambiguous about which model uses which formula
    (openai-python #2851): calibrate with ``usage.input_tokens``.

    Attributes:
        multiplier: Tokens per patch for the model.
        max_patches: Patch budget per image.
    """

    multiplier: float = 1.62
    max_patches: int = 1536

    def __post_init__(self) -> None:
        if not self.multiplier > 0 or self.max_patches < 1:
            raise InvalidSettingError("multiplier and max_patches must be positive")

    def _grid(self, width: int, height: int) -> tuple[int, int, int]:
        _check_size(width, height)
        patches = math.ceil(width / 32) * math.ceil(height / 32)
        if patches <= self.max_patches:
            return width, height, patches
        shrink = math.sqrt(32 * 32 * self.max_patches / (width * height))
        across = width * shrink / 32
        shrink *= math.floor(across) / across  # whole patches across the width
        seen_w, seen_h = width * shrink, height * shrink
        patches = math.floor(seen_w / 32 + 1e-9) * math.floor(seen_h / 32 + 1e-9)
        return max(1, round(seen_w)), max(1, round(seen_h)), max(1, patches)

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        seen_w, seen_h, _ = self._grid(width, height)
        return seen_w, seen_h

    def tokens(self, width: int, height: int) -> int:
        _, _, patches = self._grid(width, height)
        return math.ceil(patches * self.multiplier - 1e-9)


@dataclass(frozen=True)
class AnthropicRule(ImageRule):
    """Anthropic Claude: tokens = width x height / 750 (rounded up), after a shrink.

    Images are shrunk, aspect kept, when the long edge exceeds 1,568 px or the image
    exceeds about 1,600 tokens. Anthropic words that bound as "about 1.15 megapixels",
    yet its own example 1092 x 1092 (1.19 MP, about 1,590 tokens) is not shrunk, so the
    default cap is 1,200,000 px (1,600 tokens); set ``max_pixels=1_150_000`` for the
    stricter reading (a 1568 px square then costs about 1,534 tokens instead of 1,600).
    Newer Claude generations may accept larger images: treat the cap as per model.
    pxpipe measured about 907 px per billed token, close to the documented 750.

    Attributes:
        max_long_edge: Longest side before shrinking.
        max_pixels: Largest area before shrinking.
        pixels_per_token: Pixels billed as one token.
    """

    max_long_edge: int = 1568
    max_pixels: int = 1_200_000
    pixels_per_token: int = 750

    def __post_init__(self) -> None:
        if min(self.max_long_edge, self.max_pixels, self.pixels_per_token) < 1:
            raise InvalidSettingError("AnthropicRule limits must be positive")

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        _check_size(width, height)
        scale = min(
            1.0,
            self.max_long_edge / max(width, height),
            math.sqrt(self.max_pixels / (width * height)),
        )
        return (width, height) if scale >= 1 else _fit(width, height, scale)

    def tokens(self, width: int, height: int) -> int:
        seen_w, seen_h = self.effective_size(width, height)
        return math.ceil(seen_w * seen_h / self.pixels_per_token)


@dataclass(frozen=True)
class GeminiRule(ImageRule):
    """Google Gemini 1.5 / 2.x: 258 tokens per image or per 768 px tile.

    An image with both sides at most 384 px costs one unit of 258; larger images are
    cropped and scaled into 768 x 768 tiles of 258 each. Google does not publish the
    exact tiling, so the estimate is ``ceil(w/768) * ceil(h/768)`` tiles. The tiles are
    taken to keep the image's own resolution (effective size = input size); that is an
    assumption, not a published fact.

    Attributes:
        tile: Tile side in pixels.
        tokens_per_tile: Tokens per tile (and per small image).
        small_side: Images with both sides up to this are one unit.
    """

    tile: int = 768
    tokens_per_tile: int = 258
    small_side: int = 384

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        _check_size(width, height)
        return width, height

    def tokens(self, width: int, height: int) -> int:
        _check_size(width, height)
        if width <= self.small_side and height <= self.small_side:
            return self.tokens_per_tile
        return self.tokens_per_tile * math.ceil(width / self.tile) * math.ceil(height / self.tile)


_GEMINI_BUDGETS = {"low": 280, "medium": 560, "high": 1120, "ultra_high": 2240}


@dataclass(frozen=True)
class GeminiBudgetRule(ImageRule):
    """Google Gemini 3+: a fixed token budget per image, set by ``media_resolution``.

    LOW 280, MEDIUM 560, HIGH 1,120 (the default for images), ULTRA_HIGH 2,240 (per part
    only). The resolution the model works at is not published. Assumed here: the same
    pixels per token as a Gemini 2.x tile (768**2 / 258, about 2,286), so an image larger
    than ``budget * 2286`` px (HIGH: about 2.56 MP) is shrunk to that area. Measure
    legibility before relying on pages near that size.

    Attributes:
        media_resolution: ``"low"``, ``"medium"``, ``"high"`` or ``"ultra_high"``.
    """

    media_resolution: Literal["low", "medium", "high", "ultra_high"] = "high"

    def __post_init__(self) -> None:
        if self.media_resolution not in _GEMINI_BUDGETS:
            known = ", ".join(_GEMINI_BUDGETS)
            raise InvalidSettingError(
                f"unknown media_resolution {self.media_resolution!r}; known: {known}"
            )

    @property
    def budget(self) -> int:
        """Tokens billed per image."""
        return _GEMINI_BUDGETS[self.media_resolution]

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        _check_size(width, height)
        max_pixels = self.budget * 768**2 / 258
        scale = min(1.0, math.sqrt(max_pixels / (width * height)))
        return (width, height) if scale >= 1 else _fit(width, height, scale)

    def tokens(self, width: int, height: int) -> int:
        _check_size(width, height)
        return self.budget


@dataclass(frozen=True)
class QwenVLRule(ImageRule):
    """Qwen2-VL / Qwen2.5-VL (self-hosted): one token per 28 x 28 px after smart resize.

    14 px ViT patches merged 2 x 2. Each side is rounded to a multiple of 28; if the area
    then leaves ``[min_pixels, max_pixels]`` the image is scaled (aspect kept) into the
    range first. Tokens are the 28 px cells plus ``markers`` for the vision start and end
    tokens. Qwen3-VL uses a 32 px grid: ``QwenVLRule(factor=32)``.

    Attributes:
        factor: Pixels per token side (28; 32 for Qwen3-VL).
        min_pixels: Smallest area after resize (default 3,136 = 4 tokens).
        max_pixels: Largest area after resize (default 12,845,056 = 16,384 tokens).
        markers: Tokens added per image for the start/end markers.
    """

    factor: int = 28
    min_pixels: int = 3136
    max_pixels: int = 12_845_056
    markers: int = 2

    def __post_init__(self) -> None:
        if self.factor < 1 or self.markers < 0 or not 0 < self.min_pixels <= self.max_pixels:
            raise InvalidSettingError("QwenVLRule needs factor >= 1 and 0 < min <= max pixels")

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        _check_size(width, height)
        f = self.factor
        new_w, new_h = max(f, round(width / f) * f), max(f, round(height / f) * f)
        if new_w * new_h > self.max_pixels:
            beta = math.sqrt(width * height / self.max_pixels)
            new_w = max(f, math.floor(width / beta / f) * f)
            new_h = max(f, math.floor(height / beta / f) * f)
        elif new_w * new_h < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (width * height))
            new_w, new_h = math.ceil(width * beta / f) * f, math.ceil(height * beta / f) * f
        return new_w, new_h

    def tokens(self, width: int, height: int) -> int:
        seen_w, seen_h = self.effective_size(width, height)
        return (seen_w // self.factor) * (seen_h // self.factor) + self.markers


@dataclass(frozen=True)
class NoImageRule(ImageRule):
    """A reader without image input: every question about an image is refused."""

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        raise InvalidSettingError("this reader takes no images")

    def tokens(self, width: int, height: int) -> int:
        raise InvalidSettingError("this reader takes no images")


@dataclass(frozen=True)
class ReaderProfile:
    """How one target model counts tokens and how small a text it reads.

    Attributes:
        name: Registry name, e.g. ``"anthropic"``.
        image_input: False for readers shown text only (``"text"``).
        encoding: tiktoken encoding for its text tokens; an approximation where the
            model's own tokenizer is not public (the ``source`` says which).
        image_rule: How it resizes and bills an image.
        min_text_px: Smallest glyph (em) size, after the provider's resize, it is trusted
            to read at its freshest tier; ``source`` cites the measurement.
        page_side: Canvas side its fresh pages are rendered at: the side of ``tiers[0]``.
        font_px: Glyph size to render fresh pages at, so that after the resize glyphs are
            at least ``min_text_px``.
        tiers: Its decay ladder of :class:`~optical_memory.renderers.Tier` labels,
            freshest first, largest canvas first; empty for text readers.
        message_overhead: Tokens a chat message's framing costs.
        source: Where the numbers come from.

    Raises:
        InvalidSettingError: An inconsistent profile (fresh pages it could not read,
            tiers out of order, an image rule on a text reader, ...).
        UnknownTierError: A tier label that is not a tier.
    """

    name: str
    image_input: bool
    encoding: str
    image_rule: ImageRule
    min_text_px: float
    page_side: int
    font_px: float
    tiers: tuple[str, ...]
    message_overhead: int = 4
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiers", tuple(self.tiers))
        problem = self._problem()
        if problem:
            raise InvalidSettingError(f"reader profile {self.name!r}: {problem}")

    def _problem(self) -> str | None:
        if (
            not isinstance(self.name, str)
            or not self.name.strip()
            or self.name != self.name.strip()
        ):
            return "name must be a non-empty string without surrounding spaces"
        if not isinstance(self.encoding, str) or not self.encoding:
            return "encoding must name a tiktoken encoding"
        if self.message_overhead < 0:
            return "message_overhead must not be negative"
        if not isinstance(self.image_rule, ImageRule):
            return f"image_rule must be an ImageRule, got {type(self.image_rule).__name__}"
        if not self.image_input:
            return (
                None
                if isinstance(self.image_rule, NoImageRule)
                else "a text reader needs NoImageRule"
            )
        if isinstance(self.image_rule, NoImageRule):
            return "an image reader cannot use NoImageRule"
        if not self.tiers:
            return "an image reader needs at least one tier"
        sides = [Tier.coerce(label).side for label in self.tiers]
        if [Tier.coerce(label).label for label in self.tiers] != list(self.tiers):
            return f"tiers must be lower-case tier labels, got {self.tiers!r}"
        if any(a <= b for a, b in itertools.pairwise(sides)):
            return f"tiers must run from the largest canvas to the smallest, got {self.tiers!r}"
        if self.page_side != sides[0]:
            return (
                f"page_side {self.page_side} is not the side of tier {self.tiers[0]!r} ({sides[0]})"
            )
        if not (self.min_text_px > 0 and self.font_px > 0):
            return "min_text_px and font_px must be positive"
        seen = self.effective_font_px(self.page_side, self.font_px)
        if seen < self.min_text_px - 1e-6:
            return (
                f"font_px {self.font_px:g} is seen at {seen:.2f} px after the resize, "
                f"below min_text_px {self.min_text_px:g}"
            )
        return None

    def text_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this reader's encoding (estimated if it is unavailable)."""
        return get_token_counter(self.encoding).count(text)

    def image_tokens(self, width: int, height: int) -> int:
        """Tokens billed for one image of this size, after the provider's resize.

        Raises:
            InvalidSettingError: The reader takes no images, or the size is not positive.
        """
        self._require_images()
        return self.image_rule.tokens(width, height)

    def effective_size(self, width: int, height: int) -> tuple[int, int]:
        """The ``(width, height)`` the model actually sees after its provider's resize.

        Raises:
            InvalidSettingError: The reader takes no images, or the size is not positive.
        """
        self._require_images()
        return self.image_rule.effective_size(width, height)

    def effective_font_px(self, width: int, font_px: float, height: int | None = None) -> float:
        """Glyph size the model sees for a page rendered at ``font_px``.

        Uses the axis the resize shrinks most (DeepSeek-OCR's Tiny and Small modes
        stretch non-square pages unevenly).

        Args:
            width: Page width in pixels.
            font_px: Glyph size the page was rendered at.
            height: Page height; defaults to ``width`` (a square page).
        """
        height = width if height is None else height
        seen_w, seen_h = self.effective_size(width, height)
        return font_px * min(seen_w / width, seen_h / height)

    def _require_images(self) -> None:
        if not self.image_input:
            raise InvalidSettingError(f"reader {self.name!r} takes no image input")


def break_even(
    profile: ReaderProfile | str,
    text_tokens: int,
    width: int,
    height: int,
    *,
    refetch_tokens: float = 0.0,
) -> bool:
    """Whether showing a page is cheaper for this reader than sending its text.

    Image beats text when ``image_tokens(width, height) + refetch_tokens < text_tokens``.
    Prompt caching is not counted: a new image in a cached prefix forces a cache write.

    Args:
        profile: A profile or a registered reader name.
        text_tokens: The page's text in the reader's tokens (:meth:`ReaderProfile.text_tokens`).
        width: Page width in pixels, as sent.
        height: Page height in pixels, as sent.
        refetch_tokens: Expected tokens spent fetching the verbatim text back when the
            page is not enough.

    Returns:
        True when the page costs fewer tokens; always False for a text-only reader.
    """
    reader = get(profile)
    if not reader.image_input:
        return False
    return reader.image_tokens(width, height) + refetch_tokens < text_tokens


def _shipped(
    name: str,
    rule: ImageRule,
    encoding: str,
    min_text_px: float,
    tiers: tuple[str, ...],
    source: str,
) -> ReaderProfile:
    side = Tier.coerce(tiers[0]).side
    seen_w, seen_h = rule.effective_size(side, side)
    font = min_text_px * side / min(seen_w, seen_h)
    font = math.ceil(font * 100 - 1e-6) / 100  # two decimals, never below the limit
    return ReaderProfile(name, True, encoding, rule, min_text_px, side, font, tiers, source=source)


_DEEPSEEK_SOURCE = (
    "Modes: DeepSeek-OCR paper (arXiv 2510.18234) Table 1. Legibility: Table 2, about "
    "97% precision at 10 text tokens per vision token; one vision token covers 64 x 64 px "
    "in every mode, so 10 tokens per 4,096 px at 0.28 tokens per square em is a 10.7 px "
    "em. Text tokens: cl100k_base approximates its own ~129k-vocabulary tokenizer."
)
_HOSTED_LEGIBILITY = (
    "Legibility: hosted models read from about 12 px after the provider's resize "
    "(Un-LOCC: 12-16 px fonts, 2-3x at >= 90-95% retrieval; pxpipe)."
)

_LOCK = threading.Lock()
_PROFILES: dict[str, ReaderProfile] = {
    profile.name: profile
    for profile in [
        _shipped(
            "deepseek-ocr",
            DeepSeekOCRRule("small"),
            "cl100k_base",
            10.7,
            ("small", "tiny"),
            _DEEPSEEK_SOURCE,
        ),
        _shipped(
            "deepseek-ocr-tiny",
            DeepSeekOCRRule("tiny"),
            "cl100k_base",
            10.7,
            ("tiny",),
            _DEEPSEEK_SOURCE,
        ),
        _shipped(
            "deepseek-ocr-base",
            DeepSeekOCRRule("base"),
            "cl100k_base",
            10.7,
            ("base", "small", "tiny"),
            _DEEPSEEK_SOURCE,
        ),
        _shipped(
            "deepseek-ocr-large",
            DeepSeekOCRRule("large"),
            "cl100k_base",
            10.7,
            ("large", "base", "small", "tiny"),
            _DEEPSEEK_SOURCE,
        ),
        # Fresh: a 1024 page, seen at 768 px (4 tiles, 765 tokens; 16 px type read as 12 px),
        # holds ~1,000 tokens of chat. Decayed to 512 it fits low detail's 512 px view
        # whole, so it is sent at low detail for 85 tokens (~11x): memory that fades pays,
        # so the ladder is base -> tiny (640 costs 4 tiles, like 1024).
        _shipped(
            "openai",
            OpenAITileRule("high", small_as_low=True),
            "o200k_base",
            12.0,
            ("base", "tiny"),
            "GPT-4o/4.1/4.5 tile pricing, base 85 + 170 per tile. " + _HOSTED_LEGIBILITY,
        ),
        # Low detail: 85 tokens for a 512 px view whatever is sent. About 3,100 px per
        # token, twice a high-detail tile's, and no published legibility measurement, so
        # the upper end of the 12-16 px range is used.
        _shipped(
            "openai-low",
            OpenAITileRule("low"),
            "o200k_base",
            16.0,
            ("tiny",),
            "GPT-4o-class detail=low, 85 tokens. Legibility: 16 px, the top of the "
            "12-16 px range hosted models need (Un-LOCC), as low detail is coarse.",
        ),
        # Patch cost grows with area like the text a page holds (1.2x at every side up
        # to the 1,536-patch budget), so the largest tier under it keeps the full ladder.
        _shipped(
            "openai-patch",
            OpenAIPatchRule(1.62),
            "o200k_base",
            12.0,
            ("base", "small", "tiny"),
            "GPT-4.1-mini / GPT-5-mini patch pricing, x1.62. " + _HOSTED_LEGIBILITY,
        ),
        # Area pricing: 1.46x at any side up to the ~1.2 MP cap; 1024 is the largest tier
        # under it (fewest images per request) and every decay step saves tokens.
        _shipped(
            "anthropic",
            AnthropicRule(),
            "cl100k_base",
            12.0,
            ("base", "small", "tiny"),
            "Claude: w*h/750 after shrinking to 1568 px / ~1.2 MP. Text tokens: "
            "cl100k_base approximates Claude's unpublished tokenizer. " + _HOSTED_LEGIBILITY,
        ),
        # 640 and 1280 both fill their 768 px tiles best (3.1x; 512 and 1024 give 2.0x);
        # 1280 (4 tiles) can decay to 640 (1 tile), so it leaves a ladder.
        _shipped(
            "gemini",
            GeminiRule(),
            "cl100k_base",
            12.0,
            ("large", "small"),
            "Gemini 1.5/2.x: 258 per image <= 384 px or per 768 px tile (tiling "
            "estimated). Text tokens: cl100k_base approximation. "
            + _HOSTED_LEGIBILITY
            + " Un-LOCC measured 2.8:1 at 93.65% on Gemini 2.0 Flash-Lite.",
        ),
        # Fixed 1,120 per image: bigger pages are cheaper per text token, but the
        # resolution Gemini 3 works at is unpublished; 1024 (1.8x) stays well inside the
        # assumed 2.56 MP (1280 would give 2.8x if the assumption holds). Decaying saves
        # nothing, so there is no ladder.
        _shipped(
            "gemini-3",
            GeminiBudgetRule("high"),
            "cl100k_base",
            12.0,
            ("base",),
            "Gemini 3 media_resolution HIGH, 1,120 tokens per image. Text tokens: "
            "cl100k_base approximation. " + _HOSTED_LEGIBILITY,
        ),
        # One token per 28 px cell: 1.5x at every side, so the full ladder.
        _shipped(
            "qwen2.5-vl",
            QwenVLRule(),
            "cl100k_base",
            12.0,
            ("base", "small", "tiny"),
            "Qwen2.5-VL: 28 x 28 px per token after smart resize, + 2 markers. Text "
            "tokens: cl100k_base approximates its ~151k BPE. " + _HOSTED_LEGIBILITY,
        ),
        ReaderProfile(
            "text",
            False,
            "cl100k_base",
            NoImageRule(),
            0.0,
            0,
            0.0,
            (),
            source="A reader without image input; pages are never shown.",
        ),
    ]
}


def get(name: str | ReaderProfile) -> ReaderProfile:
    """Return a reader profile by name (any case), or pass a profile through.

    Raises:
        UnknownReader: No shipped or registered reader has that name.
    """
    if isinstance(name, ReaderProfile):
        return name
    key = name.strip().lower() if isinstance(name, str) else None
    with _LOCK:
        profile = _PROFILES.get(key) if key is not None else None
        known = ", ".join(sorted(_PROFILES))
    if profile is None:
        raise UnknownReader(f"unknown reader {name!r}; known readers: {known}")
    return profile


def register(profile: ReaderProfile, *, replace: bool = False) -> None:
    """Add a reader profile of your own, under ``profile.name`` (lower-cased).

    Args:
        profile: The profile.
        replace: Replace a reader of the same name (shipped ones included).

    Raises:
        InvalidSettingError: ``profile`` is not a :class:`ReaderProfile`, or a reader of
            that name exists and ``replace`` is False.
    """
    if not isinstance(profile, ReaderProfile):
        raise InvalidSettingError(f"expected a ReaderProfile, got {type(profile).__name__}")
    key = profile.name.lower()
    with _LOCK:
        if key in _PROFILES and not replace:
            raise InvalidSettingError(
                f"a reader named {key!r} is already registered; pass replace=True to replace it"
            )
        _PROFILES[key] = profile


def names() -> list[str]:
    """The names of every shipped and registered reader, sorted."""
    with _LOCK:
        return sorted(_PROFILES)
