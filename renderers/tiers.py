"""Tiers: the page sizes of the visual-decay ladder and their DeepSeek-OCR token cost."""

from __future__ import annotations

import enum

from optical_memory.errors import UnknownTierError

__all__ = ["Tier", "TierLike"]


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
