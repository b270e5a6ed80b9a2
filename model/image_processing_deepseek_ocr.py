"""Page images to DeepEncoder pixel views, and the exact slot count each view layout takes.

DeepSeek-OCR reads an image in one of five modes::

    mode     view size   preprocessing                         slots (incl. newlines, separator)
    tiny     512         plain resize to 512x512               8 x 9 + 1   = 73
    small    640         plain resize to 640x640               10 x 11 + 1 = 111
    base     1024        pad to a centred square, fill 127     16 x 17 + 1 = 273
    large    1280        pad to a centred square, fill 127     20 x 21 + 1 = 421
    gundam   1024 + 640  padded 1024 global view + 640 tiles   273 + (10 w + 1) x 10 h

A view of side ``S`` becomes a ``q x q`` grid of vision tokens with ``q = ceil(S / 64)``
(16-pixel SAM patches, then two stride-2 convolutions); each grid row is followed by a
newline embedding, and each image ends with one separator embedding. Gundam mode adds
``w x h`` tiles of 640 pixels (InternVL-style choice, 2 to 9 tiles) stitched into one
grid of ``10 h`` rows and ``10 w`` columns; an image no larger than 640 on both sides gets
no tiles and reads like ``base``.

Only Pillow and torch are used (no torchvision), and pixels are normalised to [-1, 1]
(mean 0.5, std 0.5).

Example:
    >>> processor = DeepSeekOCRImageProcessor()
    >>> views = processor("page.png", mode="small")
    >>> views.global_view.shape, views.layout.num_slots
    (torch.Size([3, 640, 640]), 111)
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import torch
from PIL import Image, ImageOps

from optical_memory.errors import InvalidImageError, InvalidSettingError

from .layout_deepseek_ocr import vision_token_layout

__all__ = [
    "MODES",
    "DeepSeekOCRImageProcessor",
    "DeepSeekOCRViews",
    "ImageSource",
    "Mode",
    "ViewLayout",
    "choose_tile_grid",
    "count_slots",
    "load_rgb_image",
]

Mode: TypeAlias = Literal["tiny", "small", "base", "large", "gundam"]
ImageSource: TypeAlias = Image.Image | bytes | bytearray | memoryview | str | os.PathLike[str]
"""One image: a PIL image, encoded image bytes (PNG, JPEG, ...), or a file path."""

# mode -> (global view side, whether the global view is padded rather than stretched)
_GLOBAL_VIEWS: dict[str, tuple[int, bool]] = {
    "tiny": (512, False),
    "small": (640, False),
    "base": (1024, True),
    "large": (1280, True),
    "gundam": (1024, True),
}
MODES: tuple[str, ...] = tuple(_GLOBAL_VIEWS)
"""The mode names, smallest first, then the tiled mode."""

_PATCH = 16  # SAM patch size in pixels
_DOWNSAMPLE = 4  # the two stride-2 convolutions of the compressor


def _queries(side: int) -> int:
    """Vision tokens along one side of a square view of ``side`` pixels."""
    return math.ceil(side / _PATCH / _DOWNSAMPLE)


def _check_mode(mode: str) -> str:
    if mode not in _GLOBAL_VIEWS:
        raise InvalidSettingError(
            f"unknown DeepSeek-OCR mode {mode!r}; known modes: {', '.join(MODES)}"
        )
    return mode


@dataclass(frozen=True)
class ViewLayout:
    """How one image is laid out in the token sequence.

    Attributes:
        mode: The mode the image was read in.
        global_size: Side of the global view in pixels (512, 640, 1024 or 1280).
        tile_size: Side of one Gundam tile in pixels.
        tile_grid: ``(columns, rows)`` of Gundam tiles; ``(0, 0)`` when there are none.
    """

    mode: str
    global_size: int
    tile_size: int = 640
    tile_grid: tuple[int, int] = (0, 0)

    @property
    def num_tiles(self) -> int:
        """How many 640-pixel tiles the image has (0 outside Gundam mode)."""
        return self.tile_grid[0] * self.tile_grid[1]

    @property
    def global_queries(self) -> int:
        """Rows (and columns) of the global view's token grid."""
        return _queries(self.global_size)

    @property
    def num_vision_tokens(self) -> int:
        """Vision tokens proper, as the paper counts them (no newlines, no separator)."""
        tile = _queries(self.tile_size)
        return self.global_queries**2 + self.num_tiles * tile * tile

    @property
    def num_slots(self) -> int:
        """Positions the image fills in the prompt: tokens, row newlines and the separator."""
        if self.num_tiles:
            return vision_token_layout(self.global_size, self.tile_size, self.tile_grid).n_slots
        return vision_token_layout(self.global_size).n_slots


@dataclass(frozen=True)
class DeepSeekOCRViews:
    """The pixel views of one image, ready for the vision encoder.

    Attributes:
        global_view: ``(3, S, S)`` float32 in [-1, 1].
        tiles: ``(n, 3, 640, 640)`` float32 in [-1, 1], row-major; ``n`` is 0 without tiles.
        layout: The image's layout and slot count.
    """

    global_view: torch.Tensor
    tiles: torch.Tensor
    layout: ViewLayout


def choose_tile_grid(
    width: int,
    height: int,
    *,
    min_tiles: int = 2,
    max_tiles: int = 9,
    tile_size: int = 640,
) -> tuple[int, int]:
    """Pick Gundam's tile grid for an image, as the official preprocessing does.

    Every ``(columns, rows)`` with ``min_tiles <= columns * rows <= max_tiles`` is a
    candidate; the one whose aspect ratio is closest to the image's wins. On an exact tie
    the later candidate (more tiles) wins only when the image has more than half the pixels
    of that grid.

    Args:
        width: Image width in pixels.
        height: Image height in pixels.
        min_tiles: Fewest tiles (2 in the official code).
        max_tiles: Most tiles (9 in the official Hugging Face code, 6 in vLLM's).
        tile_size: Tile side in pixels.

    Returns:
        ``(columns, rows)``, or ``(0, 0)`` when both sides are at most ``tile_size``.

    Raises:
        InvalidSettingError: Sizes or tile limits are out of range.
    """
    if width < 1 or height < 1:
        raise InvalidSettingError(f"image size must be positive, got {width}x{height}")
    if not 1 <= min_tiles <= max_tiles:
        raise InvalidSettingError(
            f"tile limits must satisfy 1 <= min_tiles <= max_tiles, got {min_tiles}, {max_tiles}"
        )
    if width <= tile_size and height <= tile_size:
        return (0, 0)
    # A set sorted by tile count: the same candidate order the reference uses, which
    # decides exact ties.
    candidates = sorted(
        {
            (columns, rows)
            for total in range(min_tiles, max_tiles + 1)
            for columns in range(1, total + 1)
            for rows in range(1, total + 1)
            if min_tiles <= columns * rows <= max_tiles
        },
        key=lambda grid: grid[0] * grid[1],
    )
    aspect = width / height
    area = width * height
    best = (1, 1)
    best_diff = float("inf")
    for columns, rows in candidates:
        diff = abs(aspect - columns / rows)
        if diff < best_diff:
            best, best_diff = (columns, rows), diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * columns * rows:
            best = (columns, rows)
    return best


def count_slots(
    width: int,
    height: int,
    mode: str = "small",
    *,
    min_tiles: int = 2,
    max_tiles: int = 9,
) -> int:
    """The exact number of prompt positions an image of this size takes in ``mode``.

    Args:
        width: Image width in pixels (after EXIF rotation).
        height: Image height in pixels.
        mode: ``tiny``, ``small``, ``base``, ``large`` or ``gundam``.
        min_tiles: Fewest Gundam tiles.
        max_tiles: Most Gundam tiles.

    Returns:
        73, 111, 273 or 421 for the single-view modes; ``273 + (10 w + 1) * 10 h`` for
        Gundam with a ``w x h`` tile grid.

    Raises:
        InvalidSettingError: Unknown mode or out-of-range sizes.
    """
    return _layout(width, height, _check_mode(mode), min_tiles, max_tiles).num_slots


def _layout(width: int, height: int, mode: str, min_tiles: int, max_tiles: int) -> ViewLayout:
    size, _ = _GLOBAL_VIEWS[mode]
    if width < 1 or height < 1:
        raise InvalidSettingError(f"image size must be positive, got {width}x{height}")
    grid = (0, 0)
    if mode == "gundam":
        grid = choose_tile_grid(width, height, min_tiles=min_tiles, max_tiles=max_tiles)
    return ViewLayout(mode=mode, global_size=size, tile_grid=grid)


def load_rgb_image(image: ImageSource, index: int = 0) -> Image.Image:
    """Open an image, apply its EXIF orientation and convert it to RGB.

    Transparent areas become white, so dark text on a transparent page stays legible.

    Args:
        image: A PIL image, encoded image bytes or a file path.
        index: The image's position, used in error messages.

    Returns:
        An RGB image with both sides at least one pixel.

    Raises:
        InvalidImageError: The input is empty, corrupt, missing or of an unsupported type.
    """
    if isinstance(image, Image.Image):
        opened = image
    elif isinstance(image, (bytes, bytearray, memoryview, str, os.PathLike)):
        opened = _open(image, index)
    else:
        raise InvalidImageError(
            f"image {index}: unsupported type {type(image).__name__}; expected a PIL image,"
            " encoded image bytes or a path"
        )
    try:
        oriented = ImageOps.exif_transpose(opened)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImageError(f"image {index}: cannot be decoded: {exc}") from exc
    if oriented.width == 0 or oriented.height == 0:
        raise InvalidImageError(
            f"image {index}: image is empty ({oriented.width}x{oriented.height})"
        )
    if oriented.mode == "RGB":
        return oriented
    if oriented.mode in ("RGBA", "LA", "PA") or (
        oriented.mode == "P" and "transparency" in oriented.info
    ):
        rgba = oriented.convert("RGBA")
        paper = Image.new("RGB", rgba.size, (255, 255, 255))
        paper.paste(rgba, mask=rgba.getchannel("A"))
        return paper
    return oriented.convert("RGB")


def _open(
    source: bytes | bytearray | memoryview | str | os.PathLike[str], index: int
) -> Image.Image:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InvalidImageError(f"image {index}: bytes are empty")
        stream: io.BytesIO | Path = io.BytesIO(bytes(source))
        what = "bytes"
    else:
        stream = Path(source)
        what = f"file {os.fspath(source)!r}"
    try:
        with Image.open(stream) as opened:
            opened.load()
            loaded: Image.Image = opened.copy()
            return loaded
    except FileNotFoundError as exc:
        raise InvalidImageError(f"image {index}: {what} does not exist") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports undecodable data as OSError, some truncated formats as
        # SyntaxError or ValueError.
        raise InvalidImageError(f"image {index}: {what} could not be decoded: {exc}") from exc


class DeepSeekOCRImageProcessor:
    """Turns images into DeepEncoder pixel views for one of the five modes.

    Args:
        mode: The default mode, used when a call does not name one.
        min_tiles: Fewest Gundam tiles.
        max_tiles: Most Gundam tiles (9 as in the official Hugging Face code; vLLM uses 6
            to save GPU memory).
        fill: Padding colour of padded views (the normalisation mean as 8-bit grey).

    Raises:
        InvalidSettingError: Unknown mode or inconsistent tile limits.
    """

    tile_size = 640
    image_mean = 0.5
    image_std = 0.5

    def __init__(
        self,
        mode: str = "small",
        *,
        min_tiles: int = 2,
        max_tiles: int = 9,
        fill: tuple[int, int, int] = (127, 127, 127),
    ) -> None:
        self.mode = _check_mode(mode)
        if not 1 <= min_tiles <= max_tiles:
            raise InvalidSettingError(
                f"tile limits must satisfy 1 <= min_tiles <= max_tiles, got {min_tiles}, "
                f"{max_tiles}"
            )
        self.min_tiles = min_tiles
        self.max_tiles = max_tiles
        self.fill = fill

    def layout(self, width: int, height: int, mode: str | None = None) -> ViewLayout:
        """The view layout an image of this size gets.

        Args:
            width: Image width in pixels.
            height: Image height in pixels.
            mode: Overrides the processor's default mode.

        Returns:
            The layout, with its tile grid and slot count.

        Raises:
            InvalidSettingError: Unknown mode or non-positive size.
        """
        chosen = _check_mode(self.mode if mode is None else mode)
        return _layout(width, height, chosen, self.min_tiles, self.max_tiles)

    def num_slots(self, width: int, height: int, mode: str | None = None) -> int:
        """Prompt positions an image of this size takes (see :func:`count_slots`)."""
        return self.layout(width, height, mode).num_slots

    def __call__(
        self, image: ImageSource, mode: str | None = None, index: int = 0
    ) -> DeepSeekOCRViews:
        """Preprocess one image.

        Args:
            image: A PIL image, encoded image bytes or a file path.
            mode: Overrides the processor's default mode.
            index: The image's position, used in error messages.

        Returns:
            The normalised global view, the tiles (possibly none) and the layout.

        Raises:
            InvalidImageError: The image is empty, corrupt or of an unsupported type.
            InvalidSettingError: Unknown mode.
        """
        chosen = _check_mode(self.mode if mode is None else mode)
        rgb = load_rgb_image(image, index)
        layout = _layout(rgb.width, rgb.height, chosen, self.min_tiles, self.max_tiles)
        size, padded = _GLOBAL_VIEWS[chosen]
        if padded:
            view = ImageOps.pad(rgb, (size, size), Image.Resampling.BICUBIC, color=self.fill)
        else:
            view = rgb.resize((size, size), Image.Resampling.BICUBIC)
        global_view = self._to_tensor(view)
        columns, rows = layout.tile_grid
        if columns * rows == 0:
            tiles = global_view.new_zeros((0, 3, self.tile_size, self.tile_size))
        else:
            side = self.tile_size
            canvas = rgb.resize((side * columns, side * rows), Image.Resampling.BICUBIC)
            tiles = torch.stack(
                [
                    self._to_tensor(
                        canvas.crop((c * side, r * side, (c + 1) * side, (r + 1) * side))
                    )
                    for r in range(rows)
                    for c in range(columns)
                ]
            )
        return DeepSeekOCRViews(global_view=global_view, tiles=tiles, layout=layout)

    def preprocess(
        self, images: Sequence[ImageSource], mode: str | None = None
    ) -> list[DeepSeekOCRViews]:
        """Preprocess several images in the same mode.

        Args:
            images: The images.
            mode: Overrides the processor's default mode.

        Returns:
            One :class:`DeepSeekOCRViews` per image, in order.

        Raises:
            InvalidImageError: An image is unusable; the message names its index.
            InvalidSettingError: Unknown mode.
        """
        if isinstance(images, (str, bytes, bytearray, memoryview, Image.Image)):
            raise InvalidImageError("images must be a sequence; wrap a single image in a list")
        return [self(image, mode, index) for index, image in enumerate(images)]

    def _to_tensor(self, image: Image.Image) -> torch.Tensor:
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())  # (H, W, 3)
        scaled = pixels.permute(2, 0, 1).to(torch.float32).div_(255.0)  # (3, H, W) in [0, 1]
        return scaled.sub_(self.image_mean).div_(self.image_std)
