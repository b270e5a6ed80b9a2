"""An OpticalContext as LangChain messages: blocks per provider, cost per reader."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage, message_to_dict
from langchain_core.messages.utils import count_tokens_approximately
from PIL import Image

from optical_memory import OpticalMemory, readers
from optical_memory.context import ContextPart, OpticalContext
from optical_memory.integrations.langchain import (
    context_messages,
    count_message_tokens,
    memory_message,
)
from optical_memory.integrations.langchain.messages import is_memory_message, turn_message
from optical_memory.records import Turn


def user_turn(index: int) -> str:
    return (
        f"Turn {index}: invoice INV-{10_000 + index} was paid on 2025-03-{index % 28 + 1:02d}. "
        + "We went over the rollout plan and the staging database before Friday. " * 2
    )


@pytest.fixture(scope="module")
def memories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, OpticalMemory]]:
    """One 120-turn thread drawn for each of three readers."""
    folder: Path = tmp_path_factory.mktemp("memories")
    found = {}
    for reader in ("anthropic", "openai", "gemini"):
        memory = OpticalMemory(f"sqlite:///{folder / reader}.db", readers=(reader,))
        for index in range(60):
            memory.add("t", [HumanMessage(user_turn(index)), AIMessage(f"Noted {index}.")])
        found[reader] = memory
    yield found
    for memory in found.values():
        memory.close()


def test_anthropic_pages_are_standard_blocks_with_cache_marks(
    memories: dict[str, OpticalMemory],
) -> None:
    context = memories["anthropic"].context("t", reader="anthropic")
    assert len(context.pages) >= 2
    first = context.pages[0].page_id
    message = memory_message(context, cache_pages=[first])
    assert message is not None and is_memory_message(message)
    blocks = message.content
    assert isinstance(blocks, list)
    assert blocks[0] == context.to_openai()[0]["content"][0]  # the same preamble
    images = [block for block in blocks if block["type"] == "image"]
    assert len(images) == len(context.pages)
    for block, page in zip(images, context.pages, strict=True):
        assert base64.b64decode(block["base64"]) == page.png
        assert block["mime_type"] == "image/png"
        assert ("extras" in block) == (page.page_id == first)
    assert images[0]["extras"] == {"cache_control": {"type": "ephemeral"}}
    labels = [blocks[i - 1]["text"] for i, b in enumerate(blocks) if b["type"] == "image"]
    assert labels == [page.label for page in context.pages]
    assert message.additional_kwargs["lc_data"]["pages"] == [p.page_id for p in context.pages]


def test_openai_pages_keep_their_detail(memories: dict[str, OpticalMemory]) -> None:
    context = memories["openai"].context("t", reader="openai")
    message = memory_message(context)
    assert message is not None
    images = [block for block in message.content if block["type"] == "image_url"]  # type: ignore[index,union-attr]
    assert [block["image_url"]["detail"] for block in images] == [
        page.detail for page in context.pages
    ]
    assert all(block["image_url"]["url"].startswith("data:image/png;base64,") for block in images)


@pytest.mark.parametrize("reader", ["anthropic", "openai", "gemini"])
@pytest.mark.parametrize("budget", [None, 3000])
def test_count_tokens_charges_what_the_context_costs(
    memories: dict[str, OpticalMemory], reader: str, budget: int | None
) -> None:
    context = memories[reader].context("t", reader=reader, budget=budget)
    messages = context_messages(context)
    counted = count_message_tokens(messages, reader=reader)
    assert abs(counted - context.tokens) <= 2
    # the flat 85 tokens a generic counter charges per image is not what these readers pay
    assert counted != count_tokens_approximately(messages)


def test_count_tokens_of_one_image_follows_the_reader_rule() -> None:
    png = io.BytesIO()
    Image.new("L", (1000, 700), 255).save(png, format="PNG")
    data = base64.b64encode(png.getvalue()).decode()
    block = {"type": "image", "base64": data, "mime_type": "image/png"}
    for name in ("anthropic", "openai", "gemini", "deepseek-ocr"):
        profile = readers.get(name)
        counted = count_message_tokens([HumanMessage(content=[block])], reader=name)
        assert counted == profile.message_overhead + profile.image_tokens(1000, 700)
    assert count_message_tokens([HumanMessage(content=[block])], reader="text") == 4


def test_a_tool_result_without_its_shown_call_is_left_out() -> None:
    call = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c1"}], id="a1")
    result = ToolMessage("42", tool_call_id="c1", id="r1")
    stray = ToolMessage("7", tool_call_id="c0", id="r0")
    turns = [Turn(message_to_dict(m)) for m in (stray, call, result)]
    context = OpticalContext(
        thread="t",
        reader="openai",
        budget=None,
        parts=tuple(ContextPart(kind="turn", tokens=1, turn=turn) for turn in turns),
    )
    assert context_messages(context) == [call, result]
    assert context_messages(context, originals={"a1": call})[0] is call


def test_role_content_turns_come_back_as_messages() -> None:
    turn = Turn(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        }
    )
    message = turn_message(turn)
    assert isinstance(message, AIMessage)
    assert message.tool_calls == [{"name": "f", "args": {}, "id": "c1", "type": "tool_call"}]
