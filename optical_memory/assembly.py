"""Choosing what a context shows, within a reader's budget (no IO here).

Given a thread's segments (oldest first) and its unsegmented recent turns, decide for
each segment whether it is shown as pages, as its verbatim text (the reader takes no
images, or the text is cheaper: the break-even gate), dropped for the budget, or
forgotten; which recent turns fit; and which exact strings make the fact sheet.

Budget order: the newest turn must fit (else :class:`ContextBudgetError`); then recent
turns newest first; then ``facts_share`` of the budget is set aside for the fact sheet;
then segments newest first. Segments are first fitted each in its cheapest form (its
pages shrunk to the smallest tier its reader's style has, or its text where that is
cheaper), stopping at the first that does not fit, so that a budget shows as much of the
conversation as it can and it is always the oldest that are dropped; the room left then
sharpens the newest segments back to the tier they are stored at. A page form is taken
only while it costs less than the segment's text (the break-even gate). The fact sheet
then takes what is left of its share: the exact strings of the dropped segments first,
newest first, then of the shown pages, oldest (blurriest) first, these only from what the
pages saved against text (shown turns never cost more than they would as text). Without
a budget every segment is shown as the ladder has it, and there is no fact sheet.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from optical_memory.context import FACTS_HEADING, MEMORY_PREAMBLE, page_label
from optical_memory.errors import ContextBudgetError
from optical_memory.messages import answered_call_ids, turn_text
from optical_memory.policy import FORGOTTEN
from optical_memory.readers import ReaderProfile
from optical_memory.records import Segment, Turn
from optical_memory.renderers.tiers import Tier
from optical_memory.tokens import get_token_counter

__all__ = ["ContextPlan", "SegmentView", "label_tokens", "plan_context"]

Form = Literal["pages", "text", "dropped", "forgotten"]


@dataclass(frozen=True)
class SegmentView:
    """What the planner needs of a stored segment (all from its record, no page bytes)."""

    segment: Segment
    page_sizes: tuple[tuple[int, int], ...]
    text_tokens: int
    facts: tuple[str, ...]
    as_text: bool = False
    smaller_tiers: tuple[str, ...] = ()
    """Tiers of the segment's page style below the one it is stored at, sharpest first."""

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
            smaller_tiers=tuple(
                tier
                for tier in meta.get("tiers", ())
                if segment.tier in _SIDES and _SIDES.get(tier, 0) < _SIDES[segment.tier]
            ),
        )


_SIDES = {tier.label: tier.side for tier in Tier}
_SMALLEST_LINE = 12  # tokens: a segment id and one short fact


def shrunk_size(width: int, height: int, tier: str) -> tuple[int, int]:
    """A page's size once decayed to ``tier`` (as :func:`~optical_memory.renderers.decay`
    computes it: the longer side becomes the tier's side)."""
    scale = _SIDES[tier] / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass
class ContextPlan:
    """The planner's decisions: a form per segment, the kept recent turns, the fact sheet."""

    forms: dict[str, Form] = field(default_factory=dict)
    costs: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)
    """For segments shown as pages below the tier they are stored at: the tier to show."""
    tail: list[tuple[Turn, int]] = field(default_factory=list)
    dropped_turns: list[str] = field(default_factory=list)
    facts_text: str = ""
    facts_tokens: int = 0
    raw_tokens: int = 0
    frame_tokens: int = 0
    """The memory message's own cost (its framing and preamble), when it shows anything."""


def _labels_cost(reader: ReaderProfile, view: SegmentView) -> int:
    count = len(view.page_sizes)
    return sum(
        label_tokens(reader.encoding, page_label(view.segment.id, n, count))
        for n in range(1, count + 1)
    )


@functools.lru_cache(maxsize=16384)
def label_tokens(encoding: str, label: str) -> int:
    """A page label's tokens (asked for every segment of every context: worth keeping)."""
    return get_token_counter(encoding).count(label)


def _page_cost(
    reader: ReaderProfile, view: SegmentView, tier: str | None = None, labels: int | None = None
) -> int:
    sizes = [s if tier is None else shrunk_size(*s, tier) for s in view.page_sizes]
    labels = _labels_cost(reader, view) if labels is None else labels
    return labels + sum(reader.image_tokens(w, h) for w, h in sizes)


@dataclass(frozen=True)
class _Option:
    form: Form
    cost: int
    tier: str | None = None  # pages shrunk to this tier; None: as stored


def _options(reader: ReaderProfile, view: SegmentView) -> list[_Option]:
    """The forms a segment may take, best first: its text when that is no dearer than
    its pages, its pages as stored, then smaller; pages only while cheaper than text."""
    text = _Option("text", _text_cost(reader, view))
    if not (reader.image_input and not view.as_text and view.page_sizes):
        return [text]
    labels = _labels_cost(reader, view)
    pages = [_Option("pages", _page_cost(reader, view, labels=labels))]
    pages += [
        _Option("pages", _page_cost(reader, view, t, labels), t) for t in view.smaller_tiers
    ]
    cheaper = [option for option in pages if option.cost < text.cost]  # the break-even gate
    if not cheaper or text.cost <= pages[0].cost:
        return [text, *cheaper]
    return cheaper


def _text_cost(reader: ReaderProfile, view: SegmentView) -> int:
    return view.text_tokens + reader.message_overhead * len(view.segment.turn_ids)


def _is_tool_result(turn: Turn) -> bool:
    return turn.role == "tool" or bool(answered_call_ids(turn))


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
    # A tool result whose call the budget cut would reach the provider without its call,
    # which providers refuse: it goes with its call (unless it is all that is left).
    while plan.dropped_turns and len(plan.tail) > 1 and _is_tool_result(plan.tail[0][0]):
        plan.dropped_turns.append(plan.tail.pop(0)[0].id)
    plan.raw_tokens = sum(cost for _, cost in plan.tail)
    live = [v for v in views if v.segment.tier != FORGOTTEN]
    for view in views:
        if view.segment.tier == FORGOTTEN:
            plan.forms[view.segment.id] = "forgotten"
    # The fact sheet's share is set aside first: a line of exact strings (~25 tokens) keeps
    # the amounts, ids and dates that small pages blur, for dropped segments too.
    reserve = 0.0 if budget is None or not live else facts_share * budget
    # pages, segment texts and the sheet travel in one message that opens with a preamble
    frame = reader.text_tokens(MEMORY_PREAMBLE) + reader.message_overhead
    room = left - reserve - (frame if live else 0)
    newest_first = list(reversed(live))
    options = {view.segment.id: _options(reader, view) for view in newest_first}
    chosen: dict[str, _Option] = {}
    full = plan.dropped_turns != []
    for view in newest_first:  # as many segments as fit, each at its cheapest
        cheapest = min(options[view.segment.id], key=lambda option: option.cost)
        if full or cheapest.cost > room:
            full = True
            plan.forms[view.segment.id] = "dropped"
            continue
        chosen[view.segment.id] = cheapest
        room -= cheapest.cost
    for view in newest_first:  # then sharpen the newest with what is left
        if view.segment.id not in chosen:
            break
        current = chosen[view.segment.id]
        for option in options[view.segment.id]:  # best first, none cheaper than current
            if option is current:
                break
            if option.cost - current.cost <= room:
                room -= option.cost - current.cost
                chosen[view.segment.id] = option
                break
    for view in newest_first:
        if view.segment.id not in chosen:
            continue
        option = chosen[view.segment.id]
        plan.forms[view.segment.id] = option.form
        plan.costs[view.segment.id] = option.cost
        if option.tier is not None:
            plan.tiers[view.segment.id] = option.tier
        plan.raw_tokens += _text_cost(reader, view)
    paged_views = [v for v in newest_first if plan.forms[v.segment.id] == "pages"]
    paged_text = sum(_text_cost(reader, v) for v in paged_views)
    paged_cost = sum(plan.costs[v.segment.id] for v in paged_views)
    fits = budget is None or paged_text <= room + paged_cost + frame
    if paged_views and paged_cost + frame >= paged_text and fits:
        # the break-even gate for the whole memory message: a few pages that save less
        # than the preamble costs go as text instead
        for view in paged_views:
            plan.forms[view.segment.id] = "text"
            plan.costs[view.segment.id] = _text_cost(reader, view)
            plan.tiers.pop(view.segment.id, None)
    spent = sum(plan.costs.values()) + sum(cost for _, cost in plan.tail) + frame
    # Only a budget has a sheet (without one every segment is shown as the ladder has it).
    # The lines of dropped segments hold what the context would otherwise lose; the lines
    # of shown pages repeat what the pages show, so they are paid from what the pages
    # saved: shown turns never cost more than they would as text.
    facts_room = 0.0 if budget is None else min(facts_share * budget, budget - spent)
    saved = plan.raw_tokens - spent
    dropped = [v for v in reversed(live) if plan.forms[v.segment.id] == "dropped"]
    paged = [v for v in live if plan.forms[v.segment.id] == "pages"]
    lines: list[str] = []
    used = repeated = 0
    heading = reader.text_tokens(FACTS_HEADING)
    for view in [*dropped, *paged]:
        if facts_room - used < _SMALLEST_LINE:
            break
        if not view.facts:
            continue
        line = f"{view.segment.id}: " + "; ".join(view.facts)
        cost = reader.text_tokens(line) + 1 + (heading if not lines else 0)
        shown = plan.forms[view.segment.id] == "pages"
        if used + cost > facts_room or (shown and repeated + cost > saved):
            continue
        lines.append(line)
        used += cost
        repeated += cost if shown else 0
    if lines or "pages" in plan.forms.values():
        plan.frame_tokens = frame
    if lines:
        plan.facts_text = FACTS_HEADING + "\n" + "\n".join(lines)
        plan.facts_tokens = used
    return plan
