"""The memory's pure parts: policy, facts, messages, segment cuts, budget planning."""

from __future__ import annotations

import pytest

from optical_memory import DecayPolicy, readers
from optical_memory.assembly import SegmentView, plan_context, turn_cost
from optical_memory.errors import ContextBudgetError, InvalidMessageError, InvalidSettingError
from optical_memory.facts import extract_facts
from optical_memory.messages import openai_message, turn_text, turns_from_messages
from optical_memory.records import Segment
from optical_memory.segments import (
    PageStyle,
    keep_start,
    page_fill,
    plan_cuts,
    run_in,
    segment_id,
    shown_tier,
)


def test_policy_validates_and_maps_ages_to_tiers() -> None:
    policy = DecayPolicy(ladder=((0, "base"), (10, "small"), (20, "forgotten")))
    assert [policy.tier_for(a) for a in (0, 9, 10, 19, 20, 99)] == [
        "base",
        "base",
        "small",
        "small",
        "forgotten",
        "forgotten",
    ]
    assert policy.forgets and not DecayPolicy().forgets
    for bad in (
        {"keep": ("pages", 3)},
        {"ladder": ((5, "base"),)},
        {"ladder": ((0, "tiny"), (5, "base"))},
        {"ladder": ((0, "base"), (5, "huge"))},
        {"segment_pages": 0},
        {"facts_share": 1.5},
    ):
        with pytest.raises(InvalidSettingError):
            DecayPolicy(**bad)  # type: ignore[arg-type]


def test_shown_tier_respects_each_readers_ladder() -> None:
    deepseek = PageStyle(640, 10.7, "dense", False, ("small", "tiny"))
    openai = PageStyle(1024, 16.0, "legible", True, ("base", "tiny"))
    assert shown_tier(deepseek, "base") == "small"
    assert shown_tier(openai, "small") == "tiny"  # it has no small tier: fade further
    assert shown_tier(openai, "base") == "base"
    assert shown_tier(deepseek, "forgotten") == "forgotten"


def test_facts_keep_exact_strings() -> None:
    text = "Ship A-7731-QX to Dr. Amara Okafor by 2025-03-14; mail ops@example.org. Thanks!"
    facts = extract_facts(text)
    assert facts == ["A-7731-QX", "Dr. Amara Okafor", "2025-03-14", "ops@example.org"]
    # a tighter limit keeps the strings a blurry page gets wrong most, in text order
    assert extract_facts(text, limit=2) == ["A-7731-QX", "ops@example.org"]
    assert extract_facts("") == []


def test_messages_of_every_shape() -> None:
    turns = turns_from_messages(
        [
            {"role": "user", "content": "hi"},
            ("assistant", "hello"),
            {"type": "human", "data": {"content": "lc", "id": "m1", "type": "human"}},
        ]
    )
    assert [t.role for t in turns] == ["user", "assistant", "user"]
    assert turns[2].id == "m1" and all(t.text_tokens > 0 for t in turns)
    assert openai_message(turns[2]) == {"role": "user", "content": "lc"}
    with pytest.raises(InvalidMessageError, match="message 0"):
        turns_from_messages([42])
    with pytest.raises(InvalidMessageError, match=r"JSON|NaN|nan"):
        turns_from_messages([{"role": "user", "content": float("nan")}])


def test_cuts_wait_for_full_segments_and_keep_tool_results() -> None:
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    turns = turns_from_messages(
        [
            ("user", "word " * 40),
            call,
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
            ("user", "word " * 40),
            ("user", "word " * 40),
        ]
    )
    assert "[calls f({})" in turn_text(turns[1])
    # a segment full after the call still takes the call's result with it
    cuts = plan_cuts(turns, limit=5, segment_pages=page_fill(turns[0]) + page_fill(turns[1]))
    assert cuts[0] == (0, 3)
    # a segment stops before the turn that would overflow it (a page's worth stays on one
    # page); a turn larger than a segment alone makes one
    assert plan_cuts(turns, limit=5, segment_pages=page_fill(turns[0]) + 0.001)[0] == (0, 1)
    assert plan_cuts(turns, limit=5, segment_pages=0.001)[0] == (0, 1)
    # nothing is cut while the segment is not full
    assert plan_cuts(turns, limit=1, segment_pages=0.5) == []
    assert keep_start(turns, DecayPolicy(keep=("messages", 2))) == 3


def test_budget_errors_name_both_sizes() -> None:
    profile = readers.get("openai")
    turns = turns_from_messages([("user", "long " * 500)])
    with pytest.raises(ContextBudgetError, match="budget of 10"):
        plan_context(profile, [], turns, budget=10, facts_share=0.1)


def test_a_budget_never_keeps_a_tool_result_without_its_call() -> None:
    profile = readers.get("openai")
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    turns = turns_from_messages(
        [
            {"role": "user", "content": "question " * 200},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "result " * 60},
            {"role": "assistant", "content": "answer " * 60},
        ]
    )
    budget = sum(turn_cost(profile, t) for t in turns[2:]) + 1  # the call does not fit
    plan = plan_context(profile, [], turns, budget=budget, facts_share=0.1)
    assert [turn.id for turn, _ in plan.tail] == [turns[3].id]
    assert plan.dropped_turns == [turns[0].id, turns[1].id, turns[2].id]


def _view(number: int, tier: str, *, text_tokens: int = 900) -> SegmentView:
    """A one-page segment drawn for DeepSeek-OCR (640 then 512 px)."""
    side = {"small": 640, "tiny": 512}[tier]
    segment = Segment(
        thread="t",
        turn_ids=[f"turn-{number}"],
        tier=tier,
        page_ids=[f"page-{number}"],
        id=f"seg{number:09d}",
        metadata={
            "tiers": ["small", "tiny"],
            "page_sizes": [[side, side]],
            "text_tokens": {"cl100k_base": text_tokens},
            "facts": [f"INV-{number}0{number}", f"€{number},250.00"],
        },
    )
    return SegmentView.of(segment, "cl100k_base")


def test_a_budget_shrinks_every_segment_before_it_drops_the_oldest() -> None:
    deepseek = readers.get("deepseek-ocr")
    views = [_view(n, "small") for n in range(10)]
    tail = turns_from_messages([("user", "the newest turn")])
    roomy = plan_context(deepseek, views, tail, budget=None, facts_share=0.15)
    assert set(roomy.forms.values()) == {"pages"} and not roomy.tiers
    assert not roomy.facts_text  # no budget, no fact sheet
    tight = plan_context(deepseek, views, tail, budget=800, facts_share=0.0)
    shown = [v.segment.id for v in views if tight.forms[v.segment.id] == "pages"]
    # ten small pages (110 tokens with the label) do not fit in 800, ten tiny ones (74) do
    assert len(shown) == 10
    assert sum(tight.costs.values()) + sum(c for _, c in tight.tail) <= 800
    # the room left sharpens the newest back to their stored tier, never the oldest first
    shrunk = [v.segment.id for v in views if v.segment.id in tight.tiers]
    assert shrunk and shrunk == [v.segment.id for v in views[: len(shrunk)]]
    tighter = plan_context(deepseek, views, tail, budget=400, facts_share=0.0)
    dropped = [v.segment.id for v in views if tighter.forms[v.segment.id] == "dropped"]
    assert dropped == [v.segment.id for v in views[: len(dropped)]] and 0 < len(dropped) < 10


def test_the_fact_sheet_takes_its_share_from_dropped_segments_first() -> None:
    deepseek = readers.get("deepseek-ocr")
    views = [_view(n, "tiny") for n in range(30)]
    tail = turns_from_messages([("user", "the newest turn")])
    plan = plan_context(deepseek, views, tail, budget=1500, facts_share=0.15)
    assert plan.facts_tokens <= 0.15 * 1500 and plan.facts_text
    dropped = [v for v in views if plan.forms[v.segment.id] == "dropped"]
    newest_dropped = dropped[-1]
    assert newest_dropped.segment.id in plan.facts_text
    assert "€" in plan.facts_text and sum(plan.costs.values()) + plan.facts_tokens <= 1500


def test_facts_rank_what_small_pages_blur_first() -> None:
    text = (
        "- Plan the trip\n- Pair with Ben\nThe budget is €7,355.42 for 59,827 metres, "
        "booked December 4, 2025 at 128 Birchmont Street; order ORD-635915-HB. "
        "司机是马明涛先生。"
    )
    facts = extract_facts(text, limit=6)
    assert facts == [
        "€7,355.42",
        "59,827",
        "December 4, 2025",
        "128 Birchmont Street",
        "ORD-635915-HB",
        "马明涛",
    ]
    assert "Plan" not in extract_facts(text)  # a list item's first word is no name


def test_pages_run_lines_on_but_code_keeps_its_lines() -> None:
    code = "```py\nx = 1\n\ny = 2\n```"
    text = f"Intro.\n\nSecond paragraph\n- item one\n- item two  \n{code}\nAfter."
    assert run_in(text) == f"Intro. ¶ Second paragraph ¶ - item one ¶ - item two\n{code}\nAfter."
    assert run_in("\n\n") == "" and run_in("```\ncode\n```") == "```\ncode\n```"
    paragraphs = "A line of prose that is long enough to matter here.\n\n" * 20
    [turn] = turns_from_messages([{"role": "user", "content": paragraphs}])
    [one_line] = turns_from_messages([{"role": "user", "content": paragraphs.replace("\n", " ")}])
    # Run on, twenty paragraphs cost what their characters cost, not twenty ragged lines.
    assert page_fill(turn) == pytest.approx(page_fill(one_line), rel=0.05)


def test_segment_ids_are_fifteen_digits_and_deterministic() -> None:
    style = PageStyle(side=640, font_px=10.7, preset="vision", crop=False, tiers=("small", "tiny"))
    first = segment_id(style, ["a", "b"])
    assert first == segment_id(style, ["a", "b"]) != segment_id(style, ["a", "c"])
    assert len(first) == 15 and first.isdigit()


def test_page_png_keeps_every_pixel() -> None:
    import io

    import numpy as np
    from PIL import Image

    from optical_memory.segments import _png

    pixels = np.random.default_rng(7).integers(0, 256, size=(37, 53), dtype=np.uint8)
    for image in (Image.fromarray(pixels, mode="L"), Image.fromarray(pixels).convert("RGB")):
        back = Image.open(io.BytesIO(_png(image)))
        back.load()
        assert back.mode == image.mode and back.size == (53, 37)
        assert (np.asarray(back) == np.asarray(image)).all()
