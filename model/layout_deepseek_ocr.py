"""Where an image's vision tokens go in the prompt: grids and ``<image>`` slot counts.

Pure arithmetic on sizes (no torch), shared by the model and the image processor.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VisionTokenLayout", "vision_token_layout"]

_MODE_SIZES = {512: "tiny", 640: "small", 1024: "base", 1280: "large"}


@dataclass(frozen=True)
class VisionTokenLayout:
    """Where one image's vision tokens go: its grids and its count of ``<image>`` slots.

    Attributes:
        mode: ``tiny``, ``small``, ``base``, ``large`` (single view of that size),
            ``gundam`` (1024 global + 640 tiles) or ``custom``.
        global_grid: rows (= columns) of the global view's token grid.
        tile_grid: ``(columns, rows)`` of local tiles, or ``None``.
        tile_token_grid: rows (= columns) of one tile's token grid, or ``None``.
    """

    mode: str
    global_grid: int
    tile_grid: tuple[int, int] | None = None
    tile_token_grid: int | None = None

    @property
    def n_slots(self) -> int:
        """Sequence slots: every grid row plus its newline, then one view separator."""
        slots = self.global_grid * (self.global_grid + 1) + 1
        if self.tile_grid is not None and self.tile_token_grid is not None:
            columns, rows = self.tile_grid
            slots += (columns * self.tile_token_grid + 1) * (rows * self.tile_token_grid)
        return slots


def _token_side(pixels: int, patch_size: int) -> int:
    side = pixels // patch_size  # SAM patch conv, stride = kernel
    for _ in range(2):  # two 3x3 stride-2 padding-1 convs
        side = (side + 1) // 2
    return side


def vision_token_layout(
    global_size: int,
    tile_size: int | None = None,
    tile_grid: tuple[int, int] | None = None,
    *,
    patch_size: int = 16,
) -> VisionTokenLayout:
    """The layout of one image's vision tokens; it depends only on sizes, not on weights.

    Args:
        global_size: side of the square global view in pixels (512, 640, 1024, 1280...).
        tile_size: side of each square tile (640 in Gundam mode), with ``tile_grid``.
        tile_grid: ``(columns, rows)`` of tiles, or ``None`` for a single view.
        patch_size: SAM's patch size (16 in every released model).

    Returns:
        The layout; ``n_slots`` is the number of ``<image>`` tokens the prompt needs.

    Raises:
        ValueError: only one of ``tile_size`` and ``tile_grid`` is given, or a size is not
            positive.

    Example:
        >>> vision_token_layout(640).n_slots
        111
        >>> vision_token_layout(1024, 640, (2, 3)).n_slots
        903
    """
    if (tile_size is None) != (tile_grid is None):
        raise ValueError("tile_size and tile_grid go together")
    if global_size < patch_size or (tile_size is not None and tile_size < patch_size):
        raise ValueError(f"views must be at least {patch_size} pixels")
    if tile_grid is None or tile_size is None:
        return VisionTokenLayout(
            _MODE_SIZES.get(global_size, "custom"), _token_side(global_size, patch_size)
        )
    if min(tile_grid) < 1:
        raise ValueError(f"tile_grid {tile_grid} must be at least (1, 1)")
    mode = "gundam" if (global_size, tile_size) == (1024, 640) else "custom"
    return VisionTokenLayout(
        mode,
        _token_side(global_size, patch_size),
        (int(tile_grid[0]), int(tile_grid[1])),
        _token_side(tile_size, patch_size),
    )
