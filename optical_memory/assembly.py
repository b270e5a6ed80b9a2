"""Choosing what a context shows, within a reader's budget (no IO here).

Given a thread's segments (oldest first) and its unsegmented recent turns, decide for
each segment whether it is shown as pages, as its verbatim text (the reader takes no
images, or the text is cheaper: the break-even gate), dropped for the budget, or
forgotten; which recent turns fit; and which exact strings make the fact sheet.

Budget order: the newest turn must fit (else :class:`ContextBudgetError`); then recent
turns newest first; then segments newest first, each in its cheaper form, stopping at
the first that does not fit (so it is always the oldest that are dropped); the fact sheet
takes at most ``facts_share`` of the budget (of the rest when there is no budget), from
the dropped segments first, newest first, then from the shown pages, oldest (blurriest)
first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from optical_memory.context import FACTS_HEADING, page_label
from optical_memory.errors import ContextBudgetError
from optical_memory.messages import turn_text
from optical_memory.policy import FORGOTTEN
from optical_memory.readers import ReaderProfile
from optical_memory.records import Segment, Turn

__all__ = ["ContextPlan", "SegmentView", "plan_context"]

Form = Literal["pages", "text", "dropped", "forgotten"]


@dataclass(frozen=True)
class SegmentView:
    """What the planner needs of a stored segment (all from its record, no page bytes)."""

    segment: Segment
    page_sizes: tuple[tuple[int, int], ...]
    text_tokens: int
    facts: tuple[str, ...]
    as_text: bool = False

    @classmethod
    def of(cls, segment: Segment, encoding: str) -> SegmentView:
        meta = segment.metadata
        counts = meta.get("text_tokens", {})
        tokens = counts.get(encoding) or counts.get("cl100k_base") or 0
        return cls(
            segment=segment,
            page_sizes=tuple((int(w), int(h)) for w, h in meta.get("page_sizes", [])),
            text_tokens=int(tokens),
            facts=tuple(meta.get("facts", [])),
            as_text=bool(meta.get("as_text", False)),
        )


@dataclass
class ContextPlan:
    """The planner's decisions: a form per segment, the kept recent turns, the fact sheet."""

    forms: dict[str, Form] = field(default_factory=dict)
    costs: dict[str, int] = field(default_factory=dict)
    tail: list[tuple[Turn, int]] = field(default_factory=list)
    dropped_turns: list[str] = field(default_factory=list)
    facts_text: str = ""
    facts_tokens: int = 0
    raw_tokens: int = 0


def _page_cost(reader: ReaderProfile, view: SegmentView) -> int:
    count = len(view.page_sizes)
    return sum(
        reader.image_tokens(w, h) + reader.text_tokens(page_label(view.segment.id, n, count))
        for n, (w, h) in enumerate(view.page_sizes, 1)
    )


def _text_cost(reader: ReaderProfile, view: SegmentView) -> int:
    return view.text_tokens + reader.message_overhead * len(view.segment.turn_ids)


def turn_cost(reader: ReaderProfile, turn: Turn) -> int:
    """What a turn costs ``reader`` as text, with its message framing."""
    return reader.text_tokens(turn_text(turn)) + reader.message_overhead


def plan_context(
    reader: ReaderProfile,
    views: Sequence[SegmentView],
    tail: Sequence[Turn],
    budget: int | None,
    facts_share: float,
) -> ContextPlan:
    """Decide what a context shows. See the module docstring for the order."""
    plan = ContextPlan()
    left = float("inf") if budget is None else budget
    # recent turns, newest first; the newest must fit
    tail_costs = [turn_cost(reader, turn) for turn in tail]
    kept: list[tuple[Turn, int]] = []
    for index in range(len(tail) - 1, -1, -1):
        cost = tail_costs[index]
        if cost > left:
            if not kept:
                raise ContextBudgetError(
                    f"the newest turn costs {cost} tokens for reader {reader.name!r}, more "
                    f"than the whole budget of {budget}"
                )
            plan.dropped_turns = [turn.id for turn in tail[: index + 1]]
            left = 0
            break
        kept.append((tail[index], cost))
        left -= cost
    plan.tail = kept[::-1]
    plan.raw_tokens = sum(cost for _, cost in plan.tail)
    live = [v for v in views if v.segment.tier != FORGOTTEN]
    for view in views:
        if view.segment.tier == FORGOTTEN:
            plan.forms[view.segment.id] = "forgotten"
    reserve = 0.0 if budget is None or not live else facts_share * budget
    room = left - reserve
    full = plan.dropped_turns != []
    for view in reversed(live):
        text_cost = _text_cost(reader, view)
        form: Form = "text"
        cost = text_cost
        if reader.image_input and not view.as_text and view.page_sizes:
            page_cost = _page_cost(reader, view)
            if page_cost < text_cost:  # the break-even gate
                form, cost = "pages", page_cost
        if full or cost > room:
            full = True
            plan.forms[view.segment.id] = "dropped"
            continue
        plan.forms[view.segment.id] = form
        plan.costs[view.segment.id] = cost
        plan.raw_tokens += text_cost
        room -= cost
    spent = sum(plan.costs.values()) + sum(cost for _, cost in plan.tail)
    facts_room = facts_share * spent if budget is None else max(0.0, budget - spent)
    dropped = [v for v in reversed(live) if plan.forms[v.segment.id] == "dropped"]
    paged = [v for v in live if plan.forms[v.segment.id] == "pages"]
    lines: list[str] = []
    used = 0
    heading = reader.text_tokens(FACTS_HEADING) + reader.message_overhead
    for view in [*dropped, *paged]:
        if not view.facts:
            continue
        line = f"{view.segment.id}: " + "; ".join(view.facts)
        cost = reader.text_tokens(line) + 1
        if (heading if not lines else 0) + used + cost > facts_room:
            continue
        if not lines:
            used += heading
        lines.append(line)
        used += cost
    if lines:
        plan.facts_text = FACTS_HEADING + "\n" + "\n".join(lines)
        plan.facts_tokens = used
    return plan
