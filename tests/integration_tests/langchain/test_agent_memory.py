"""Acceptance: a ``create_agent`` agent with the middleware and a checkpointer over 100 turns.

The model must get page images for the old turns and the recent turns as text, the
checkpoint must stay free of image bytes (compared with the same run that writes the
pages into the state), ``recall_segment`` must return the original text, and a model
without image input must see text only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from optical_memory import AsyncOpticalMemory, OpticalMemory
from optical_memory.integrations.langchain import OpticalMemoryMiddleware
from optical_memory.integrations.langchain.messages import is_memory_message
from tests.integration_tests.langchain.agent_runs import (
    PNG_BASE64_HEAD,
    InlinePagesMiddleware,
    agent_with,
    arun_turns,
    latest_checkpoint_bytes,
    run_turns,
    stored_bytes,
    user_turn,
)
from tests.integration_tests.langchain.chat_models import (
    RecordingChatModel,
    image_model,
    text_model,
)

TURNS = 100
READER = "anthropic"


@pytest.fixture(params=["in-memory", "sqlite"])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    if request.param == "in-memory":
        yield InMemorySaver()
        return
    conn = sqlite3.connect(tmp_path / "checkpoints.db", check_same_thread=False)
    yield SqliteSaver(conn)
    conn.close()


@pytest.fixture(params=["in-memory", "sqlite"])
async def async_saver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    if request.param == "in-memory":
        yield InMemorySaver()
        return
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "checkpoints.db")) as saver:
        yield saver


def check_view(model: RecordingChatModel, memory: OpticalMemory, thread: str) -> None:
    """The last call: one memory message of labelled pages, then the recent turns as
    the very text messages of the conversation."""
    sent = model.calls[-1]
    opened, recent = sent[0], sent[1:]
    assert is_memory_message(opened)
    blocks = opened.content
    assert isinstance(blocks, list)
    images = [i for i, block in enumerate(blocks) if block["type"] == "image"]
    assert len(images) >= 3
    for index in images:
        block = blocks[index]
        assert block["mime_type"] == "image/png"
        assert block["base64"].encode().startswith(PNG_BASE64_HEAD)
        assert blocks[index - 1]["text"].startswith("segment ")
    shown = {seg.id for seg in memory.store.list_segments(thread)}
    labelled = {blocks[i - 1]["text"].split()[1] for i in images}
    assert labelled <= shown
    assert all(isinstance(m.content, str) for m in recent)
    assert recent[-1].content == user_turn(TURNS - 1)
    assert not any(is_memory_message(m) for m in recent)


def check_checkpoint_text_only(saver: BaseCheckpointSaver[Any], thread: str) -> None:
    state = saver.get_tuple({"configurable": {"thread_id": thread}})
    assert state is not None
    messages: list[BaseMessage] = state.checkpoint["channel_values"]["messages"]
    assert len(messages) == 2 * TURNS
    assert all(isinstance(m.content, str) for m in messages)
    assert not any(is_memory_message(m) for m in messages)
    assert PNG_BASE64_HEAD not in saver.serde.dumps_typed(state.checkpoint)[1]


def check_recall(middleware: OpticalMemoryMiddleware, memory: OpticalMemory, thread: str) -> None:
    """recall_segment, called as the agent's tool node calls it, returns the turns'
    exact text, and its artifact the exact messages."""
    segment = memory.store.list_segments(thread)[0]
    recall = middleware.tools[0]
    call = {
        "name": recall.name,
        "args": {"segment_id": segment.id},
        "id": "call-1",
        "type": "tool_call",
    }
    result = recall.invoke(call, {"configurable": {"thread_id": thread}})
    assert isinstance(result, ToolMessage)
    turns = memory.store.get_turns(thread, 0, len(segment.turn_ids))
    for turn in turns:
        assert turn.message["data"]["content"] in result.content
    assert result.content.startswith(f"user: {user_turn(0)}")
    assert result.artifact == [dict(turn.message) for turn in turns]


def test_sync_agent_100_turns(saver: BaseCheckpointSaver[Any], memory: OpticalMemory) -> None:
    model = image_model()
    middleware = OpticalMemoryMiddleware(memory, reader=READER)
    run_turns(agent_with(model, middleware, saver), "chat", TURNS)
    assert len(model.calls) == TURNS
    check_view(model, memory, "chat")
    check_checkpoint_text_only(saver, "chat")
    check_recall(middleware, memory, "chat")


async def test_async_agent_100_turns(
    async_saver: BaseCheckpointSaver[Any], memory: OpticalMemory
) -> None:
    model = image_model()
    middleware = OpticalMemoryMiddleware(memory, reader=READER)
    await arun_turns(agent_with(model, middleware, async_saver), "chat", TURNS)
    assert len(model.calls) == TURNS
    check_view(model, memory, "chat")
    state = await async_saver.aget_tuple({"configurable": {"thread_id": "chat"}})
    assert state is not None
    assert PNG_BASE64_HEAD not in async_saver.serde.dumps_typed(state.checkpoint)[1]
    assert len(state.checkpoint["channel_values"]["messages"]) == 2 * TURNS


def test_checkpoint_is_a_tenth_of_inlined_pages(
    saver: BaseCheckpointSaver[Any], tmp_path: Path
) -> None:
    """The same 100 turns, once with the middleware (pages read from the store at call
    time) and once with the pages written into the state: the checkpointer holds less
    than a tenth, in all it stored and in its newest checkpoint."""
    inline_saver = (
        InMemorySaver()
        if isinstance(saver, InMemorySaver)
        else SqliteSaver(sqlite3.connect(tmp_path / "inline.db", check_same_thread=False))
    )
    with (
        OpticalMemory(f"sqlite:///{tmp_path / 'a.db'}", readers=(READER,)) as ours,
        OpticalMemory(f"sqlite:///{tmp_path / 'b.db'}", readers=(READER,)) as theirs,
    ):
        run_turns(
            agent_with(image_model(), OpticalMemoryMiddleware(ours, reader=READER), saver),
            "chat",
            TURNS,
        )
        inlined = image_model()
        run_turns(
            agent_with(inlined, InlinePagesMiddleware(theirs, READER), inline_saver),
            "chat",
            TURNS,
        )
    assert any(PNG_BASE64_HEAD in str(m.content).encode() for m in inlined.calls[-1])
    total, total_inlined = stored_bytes(saver), stored_bytes(inline_saver)
    latest = latest_checkpoint_bytes(saver, "chat")
    latest_inlined = latest_checkpoint_bytes(inline_saver, "chat")
    print(
        f"\n{type(saver).__name__}, {TURNS} turns: stored {total:,} B against {total_inlined:,} B "
        f"inlined ({total / total_inlined:.1%}); newest checkpoint {latest:,} B against "
        f"{latest_inlined:,} B ({latest / latest_inlined:.1%})"
    )
    assert total < 0.1 * total_inlined
    assert latest < 0.1 * latest_inlined


@pytest.mark.parametrize("budget", [None, 3000])
def test_model_without_image_input_sees_text_only(
    memory: OpticalMemory, budget: int | None
) -> None:
    model = text_model()
    middleware = OpticalMemoryMiddleware(memory, reader=READER, budget=budget)
    run_turns(agent_with(model, middleware, InMemorySaver()), "chat", 60)
    assert memory.store.list_segments("chat")
    for sent in model.calls:
        for message in sent:
            blocks = message.content if isinstance(message.content, list) else []
            assert all(block["type"] == "text" for block in blocks)
    last = model.calls[-1]
    if budget is None:  # passed through: the conversation as it is in the state
        assert len(last) == 2 * 60 - 1
        assert [m.content for m in last[::2]] == [user_turn(i) for i in range(60)]
    else:  # segments as their text and the fact sheet, within the budget
        assert is_memory_message(last[0])
        assert "INV-10000" in str(last[0].content)  # the oldest turn's values, as text
        assert middleware.count_tokens(last) <= budget + 200
        assert last[-1].content == user_turn(59)


async def test_async_model_without_image_input_passes_through(memory: OpticalMemory) -> None:
    model = text_model()
    middleware = OpticalMemoryMiddleware(memory, reader=READER)
    await arun_turns(agent_with(model, middleware, InMemorySaver()), "chat", 40)
    assert [type(m) for m in model.calls[-1]] == [HumanMessage, AIMessage] * 39 + [HumanMessage]
    assert memory.store.count_turns("chat") == 80  # the last reply too


async def test_async_agent_on_the_async_memory(sqlite_url: str) -> None:
    memory = AsyncOpticalMemory(sqlite_url, readers=(READER,))
    model = image_model()
    middleware = OpticalMemoryMiddleware(memory, reader=READER)
    await arun_turns(agent_with(model, middleware, InMemorySaver()), "chat", 50)
    assert await memory.search("chat", "INV-10000") != []
    assert memory.sync.store.count_turns("chat") == 100
    assert any(block["type"] == "image" for block in model.calls[-1][0].content)
    await memory.aclose()
