"""How a memory keeps turns: the verbatim tail, segment size, the decay ladder, the gates.

Example:
    >>> policy = DecayPolicy(keep=("tokens", 4000), ladder=((0, "base"), (50, "tiny")))
    >>> policy.tier_for(10), policy.tier_for(80)
    ('base', 'tiny')
    >>> DecayPolicy(ladder=((0, "small"), (500, "forgotten"))).tier_for(900)
    'forgotten'
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from optical_memory.errors import InvalidSettingError

__all__ = ["FORGOTTEN", "LADDER_TIERS", "AgeUnit", "DecayPolicy", "DecayStep"]

AgeUnit = Literal["turns", "tokens", "seconds"]
FORGOTTEN = "forgotten"
LADDER_TIERS = ("large", "base", "small", "tiny", FORGOTTEN)
"""Tiers a ladder may name, sharpest first."""


@dataclass(frozen=True)
class DecayStep:
    """From ``age`` on (in the policy's unit), a segment is shown at ``tier``."""

    age: float
    tier: str

    def __post_init__(self) -> None:
        if not isinstance(self.age, (int, float)) or not math.isfinite(self.age) or self.age < 0:
            raise InvalidSettingError(f"a decay step's age must be a number >= 0: {self.age!r}")
        if self.tier not in LADDER_TIERS:
            raise InvalidSettingError(
                f"unknown tier {self.tier!r} in the decay ladder; expected one of {LADDER_TIERS}"
            )


# Fresh segments at the sharpest tier a reader takes; after 100 more turns they shrink to
# small, after 300 to tiny (DeepSeek-OCR's paper: ~97% at 10x, ~60% at 20x compression;
# our CPU read-back of tiny chat pages stays above 0.95, README "Memory"). Nothing is
# forgotten by age unless a policy says so; a context budget still drops the oldest.
_DEFAULT_LADDER = (DecayStep(0, "base"), DecayStep(30, "small"), DecayStep(80, "tiny"))


def _ladder(steps: Sequence[DecayStep | tuple[float, str]]) -> tuple[DecayStep, ...]:
    ladder = tuple(s if isinstance(s, DecayStep) else DecayStep(*s) for s in steps)
    if not ladder or ladder[0].age != 0:
        raise InvalidSettingError("a decay ladder starts with a step at age 0")
    for before, after in itertools.pairwise(ladder):
        if after.age <= before.age:
            raise InvalidSettingError("decay ladder ages must increase step by step")
        if LADDER_TIERS.index(after.tier) < LADDER_TIERS.index(before.tier):
            raise InvalidSettingError(
                f"a decay ladder only shrinks: {before.tier!r} cannot be followed by {after.tier!r}"
            )
        if before.tier == FORGOTTEN:
            raise InvalidSettingError("'forgotten' can only be the last step of a ladder")
    return ladder


@dataclass(frozen=True)
class DecayPolicy:
    """What a memory keeps verbatim, how it cuts and shrinks the rest, and its gates.

    Attributes:
        keep: The verbatim tail: ``("messages", n)`` keeps the last n turns as text,
            ``("tokens", n)`` the newest turns whose text fits in n tokens. Older turns are
            cut into segments and shown as pages.
        ladder: ``(age, tier)`` steps, youngest first, starting at age 0. A tier larger than
            a reader's sharpest is shown at that reader's sharpest. Ending in
            ``"forgotten"`` drops segments from contexts past that age (their turns stay in
            the store); the default forgets nothing.
        age_unit: ``"turns"`` (turns added since the segment's last turn, or since it was
            recalled), ``"tokens"`` (their text tokens) or ``"seconds"`` (wall time).
        segment_pages: How much text one segment holds, in DeepSeek-OCR pages (a 640 px
            page at 10.7 px holds about 1,000 tokens of English chat, fewer of code):
            0.94 fills one page and leaves room for the estimate's error (3% of a page),
            so a segment is one page for DeepSeek-OCR and one cropped page for the
            others. A segment is cut once the next turn would overflow it, so every
            process cuts the same segments. Larger values make fewer, multi-page segments.
        facts_per_segment: How many exact strings (numbers, names, identifiers, dates) a
            segment's fact sheet keeps.
        facts_share: The share of a context's budget set aside for the fact sheet: a line
            of a segment's exact strings (amounts, ids, dates, names, ~25 tokens) keeps
            what a small page blurs and what a dropped segment held. On the tuning
            conversations at a 4k budget, 0.20 recovers 0.92 of the evidence for
            DeepSeek-OCR (0.87 for Anthropic) and 0.25 recovers 0.93 (0.92), the sheet
            alone 0.91 (README *Memory end to end*). Contexts without a budget have no sheet.
        verify_threshold: ``verify()`` re-renders a page larger (or keeps its segment as
            text) when its read-back character accuracy is below this.
    """

    keep: tuple[Literal["messages", "tokens"], int] = ("messages", 20)
    ladder: Sequence[DecayStep | tuple[float, str]] = field(default=_DEFAULT_LADDER)
    age_unit: AgeUnit = "turns"
    segment_pages: float = 0.94
    facts_per_segment: int = 12
    facts_share: float = 0.25
    verify_threshold: float = 0.90

    def __post_init__(self) -> None:
        kind, count = self.keep if len(self.keep) == 2 else (None, None)
        if kind not in ("messages", "tokens") or not isinstance(count, int) or count < 0:
            raise InvalidSettingError(
                f"keep must be ('messages', n) or ('tokens', n) with n >= 0, got {self.keep!r}"
            )
        object.__setattr__(self, "keep", (kind, count))
        object.__setattr__(self, "ladder", _ladder(self.ladder))
        if self.age_unit not in ("turns", "tokens", "seconds"):
            raise InvalidSettingError(
                f"age_unit must be turns, tokens or seconds: {self.age_unit!r}"
            )
        pages = self.segment_pages
        if not isinstance(pages, (int, float)) or not math.isfinite(pages) or pages <= 0:
            raise InvalidSettingError(f"segment_pages must be a number > 0: {pages!r}")
        if not isinstance(self.facts_per_segment, int) or self.facts_per_segment < 0:
            raise InvalidSettingError("facts_per_segment must be an int >= 0")
        for name in ("facts_share", "verify_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise InvalidSettingError(f"{name} must be between 0 and 1: {value!r}")

    @property
    def steps(self) -> tuple[DecayStep, ...]:
        """The ladder as :class:`DecayStep` objects."""
        return cast(tuple[DecayStep, ...], self.ladder)  # normalised in __post_init__

    @property
    def forgets(self) -> bool:
        """Whether the ladder ends in ``"forgotten"``."""
        return self.steps[-1].tier == FORGOTTEN

    def tier_for(self, age: float) -> str:
        """The ladder's tier for a segment of this age."""
        tier = self.steps[0].tier
        for step in self.steps:
            if age >= step.age:
                tier = step.tier
        return tier
