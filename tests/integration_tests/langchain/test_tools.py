"""recall_segment and search_memory on a real memory, called the ways an agent calls them."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from optical_memory import AsyncOpticalMemory, DecayPolicy, OpticalMemory
from optical_memory.integrations.langchain import RecallSegmentTool, SearchMemoryTool

SMALL = DecayPolicy(keep=("messages", 4), segment_pages=0.15)
CONFIG = {"configurable": {"thread_id": "chat"}}


def conversation(turns: int) -> list[HumanMessage | AIMessage]:
    messages: list[HumanMessage | AIMessage] = []
    for index in range(turns):
        messages.append(HumanMessage(f"Order {index}: ship crate C-{500 + index} to dock {index}."))
        messages.append(AIMessage(f"Crate C-{500 + index} is booked for dock {index}."))
    return messages


@pytest.fixture
def filled(sqlite_url: str) -> OpticalMemory:
    memory = OpticalMemory(sqlite_url, policy=SMALL, readers=("anthropic",))
    memory.add("chat", conversation(30))
    assert len(memory.store.list_segments("chat")) >= 3
    return memory


def tool_call(name: str, **args: object) -> dict[str, object]:
    return {"name": name, "args": args, "id": "call-7", "type": "tool_call"}


def test_recall_returns_the_exact_turns_and_sharpens(filled: OpticalMemory) -> None:
    segment = filled.store.list_segments("chat")[0]
    recall = RecallSegmentTool(memory=filled)
    result = recall.invoke(tool_call("recall_segment", segment_id=segment.id), CONFIG)
    assert isinstance(result, ToolMessage) and result.status == "success"
    turns = [filled.store.get_turn("chat", turn_id) for turn_id in segment.turn_ids]
    assert result.content == "\n\n".join(
        f"{turn.role}: {turn.message['data']['content']}" for turn in turns
    )
    assert result.artifact == [dict(turn.message) for turn in turns]
    assert filled.store.get_segment("chat", segment.id).metadata["born"]["turns"] == 60


def test_recall_of_an_unknown_segment_tells_the_model(filled: OpticalMemory) -> None:
    result = RecallSegmentTool(memory=filled).invoke(
        tool_call("recall_segment", segment_id="nope"), CONFIG
    )
    assert isinstance(result, ToolMessage) and result.status == "error"
    assert "no segment 'nope'" in result.content


def test_a_tool_without_a_thread_says_so(filled: OpticalMemory) -> None:
    result = SearchMemoryTool(memory=filled).invoke(tool_call("search_memory", query="crate"))
    assert result.status == "error"
    assert "thread_id" in result.content


def test_search_names_the_segment_to_recall(filled: OpticalMemory) -> None:
    result = SearchMemoryTool(memory=filled, thread="chat").invoke(
        tool_call("search_memory", query="C-503", limit=3)
    )
    assert result.content.splitlines()[0].startswith("[segment ")
    best = result.artifact[0]
    assert "C-503 " in best["message"]["data"]["content"]
    segment = filled.store.get_segment("chat", best["segment_id"])
    assert filled.store.get_turns("chat")[best["index"]].id in segment.turn_ids
    recent = SearchMemoryTool(memory=filled, thread="chat").invoke({"query": "C-529"})
    assert recent.startswith("[recent] ")
    assert SearchMemoryTool(memory=filled, thread="chat").invoke({"query": "zebra"}) == (
        "no earlier turn matches"
    )


async def test_async_tools_on_the_async_memory(sqlite_url: str) -> None:
    memory = AsyncOpticalMemory(sqlite_url, policy=SMALL, readers=("anthropic",))
    await memory.add("chat", conversation(30))
    segment = (await memory.inspect("chat")).segments[0]
    result = await RecallSegmentTool(memory=memory).ainvoke(
        tool_call("recall_segment", segment_id=segment.id), CONFIG
    )
    assert result.content.startswith("user: Order 0: ship crate C-500 to dock 0.")
    found = await SearchMemoryTool(memory=memory, thread="chat").ainvoke({"query": "C-500"})
    assert found.startswith(f"[segment {segment.id}] ")
    assert f"[segment {segment.id}] user: Order 0: ship crate C-500 to dock 0." in found
    await memory.aclose()


def test_tools_refuse_anything_but_a_memory() -> None:
    # pydantic wraps the InvalidSettingError (a ValueError) in its ValidationError
    with pytest.raises(ValueError, match="must be an OpticalMemory or AsyncOpticalMemory"):
        RecallSegmentTool(memory="sqlite:///x.db")
