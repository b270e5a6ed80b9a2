"""``OpticalContext.to_deepseek()`` on hand-built contexts: layout, order, markers (no torch)."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace

import pytest
from PIL import Image

from optical_memory.context import ContextPage, ContextPart, OpticalContext
from optical_memory.deepseek_context import FINGERPRINT_KEY, NoVisionTokens
from optical_memory.errors import OpticalMemoryError
from optical_memory.records import Turn, VisionTokens

FINGERPRINT = "deepseek-ocr:" + "ab" * 16


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def _page(page_id: str, segment: str, rows: int) -> ContextPage:
    tokens = VisionTokens(bytes(rows * 4 * 4), "float32", (rows, 4), FINGERPRINT, "small")
    return ContextPage(
        png=_png(),
        page_id=page_id,
        segment_id=segment,
        tier="small",
        turn_ids=("t1",),
        image_tokens=100,
        width=640,
        height=640,
        label=f"[segment {segment}]",
        vision_tokens=tokens,
    )


def _context() -> OpticalContext:
    first, second = _page("p1", "s1", 3), _page("p2", "s2", 5)
    recent = Turn({"role": "user", "content": "what did <image> mean?"}, id="t9")
    return OpticalContext(
        thread="chat",
        reader="deepseek-ocr",
        budget=None,
        parts=(
            ContextPart(kind="page", tokens=108, segment_id="s1", page=first),
            ContextPart(kind="text", tokens=20, segment_id="s3", text="[segment s3]\nuser: hi"),
            ContextPart(kind="page", tokens=108, segment_id="s2", page=second),
            ContextPart(kind="facts", tokens=9, text="Exact values: INV-77"),
            ContextPart(kind="turn", tokens=9, turn_ids=("t9",), turn=recent),
        ),
        metadata={FINGERPRINT_KEY: FINGERPRINT},
    )


def test_prompt_holds_the_parts_in_order_with_one_marker_per_page() -> None:
    prompt = _context().to_deepseek(instruction="assistant:")
    lines = prompt.prompt.split("\n")
    assert lines[1:] == [
        "[segment s1]",
        "<image>",
        "[segment s3]",
        "user: hi",
        "[segment s2]",
        "<image>",
        "Exact values: INV-77",
        "user: what did <\u200bimage> mean?",
        "assistant:",
    ]
    assert lines[0].startswith("Earlier turns of this conversation")
    assert [tokens.shape for tokens in prompt.vision_tokens] == [(3, 4), (5, 4)]
    assert (prompt.page_ids, prompt.fingerprint) == (("p1", "p2"), FINGERPRINT)


def test_a_context_without_vision_tokens_is_refused() -> None:
    context = _context()
    bare = replace(context, metadata={})
    with pytest.raises(NoVisionTokens, match="'chat'"):
        bare.to_deepseek()
    first = context.parts[0]
    assert first.page is not None
    missing = replace(first, page=replace(first.page, vision_tokens=None))
    with pytest.raises(NoVisionTokens):
        replace(context, parts=(missing, *context.parts[1:])).to_deepseek()
    assert issubclass(NoVisionTokens, OpticalMemoryError) and issubclass(NoVisionTokens, ValueError)


def test_a_context_of_turns_only_gives_a_prompt_without_images() -> None:
    context = _context()
    turns_only = replace(context, parts=context.parts[-1:])
    prompt = turns_only.to_deepseek()
    assert prompt.prompt == "user: what did <\u200bimage> mean?"
    assert prompt.vision_tokens == ()


def test_the_deepseek_context_module_stays_light() -> None:
    code = (
        "import sys, optical_memory.deepseek_context, optical_memory.memory;"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
