"""Tiers: the page sizes of the visual-decay ladder and their DeepSeek-OCR token cost."""

from __future__ import annotations

import enum

from optical_memory.errors import InvalidSettingError, UnknownTierError

__all__ = ["Tier", "TierLike", "resolve_canvas"]

MIN_SIDE, MAX_SIDE = 16, 16384


class Tier(enum.Enum):
    """A square page canvas and the vision tokens DeepSeek-OCR spends on it.

    Pages move down the ladder as they age: ``LARGE`` -> ``BASE`` -> ``SMALL`` -> ``TINY``.

    Example:
        >>> Tier.SMALL.side, Tier.SMALL.vision_tokens
        (640, 100)
        >>> Tier.coerce("tiny") is Tier.TINY
        True
    """

    LARGE = ("large", 1280, 400)
    BASE = ("base", 1024, 256)
    SMALL = ("small", 640, 100)
    TINY = ("tiny", 512, 64)

    def __init__(self, label: str, side: int, vision_tokens: int) -> None:
        self.label = label
        self.side = side
        self.vision_tokens = vision_tokens

    @property
    def size(self) -> tuple[int, int]:
        """Canvas ``(width, height)`` in pixels."""
        return (self.side, self.side)

    @classmethod
    def coerce(cls, value: TierLike) -> Tier:
        """Return the tier named by ``value`` (a ``Tier`` or its name, any case).

        Raises:
            UnknownTierError: ``value`` names no tier.
        """
        if isinstance(value, Tier):
            return value
        if isinstance(value, str):
            for tier in cls:
                if tier.label == value.strip().lower():
                    return tier
        names = ", ".join(t.label for t in cls)
        raise UnknownTierError(f"unknown tier {value!r}; expected one of: {names}")

    def __str__(self) -> str:
        return self.label


TierLike = Tier | str


def resolve_canvas(
    tier: TierLike, size: tuple[int, int] | None
) -> tuple[Tier | None, tuple[int, int]]:
    """The tier (``None`` for a custom size) and ``(width, height)`` of a page canvas.

    Raises:
        UnknownTierError: ``tier`` names no tier (checked only when ``size`` is None).
        InvalidSettingError: ``size`` is not two integers between 16 and 16384.
    """
    if size is None:
        resolved = Tier.coerce(tier)
        return resolved, resolved.size
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidSettingError(f"size must be (width, height) in pixels, got {size!r}") from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidSettingError(
            f"size must be between {MIN_SIDE} and {MAX_SIDE} px per side, got {size!r}"
        )
    return None, (width, height)
