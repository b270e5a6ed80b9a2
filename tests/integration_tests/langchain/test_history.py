"""OpticalChatMessageHistory: exact round trips, the optical view, one store call per add,
and RunnableWithMessageHistory on top; on SQLite and on a real redis-server."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from optical_memory import AsyncOpticalMemory, DecayPolicy, OpticalMemory
from optical_memory.errors import InvalidRecordError, InvalidSettingError, UnknownReader
from optical_memory.integrations.langchain import OpticalChatMessageHistory
from optical_memory.integrations.langchain.messages import is_memory_message

SMALL = DecayPolicy(keep=("messages", 4), segment_pages=0.15)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def memory(store_url: str, unique_tenant: str) -> Iterator[OpticalMemory]:
    with OpticalMemory(store_url, tenant=unique_tenant, policy=SMALL, readers=("openai",)) as m:
        yield m


def tool_exchange(index: int) -> list[BaseMessage]:
    """A user turn, a tool call with usage metadata, its result and the answer."""
    call = {"name": "lookup", "args": {"order": f"O-{index}", "n": index}, "id": f"call-{index}"}
    return [
        HumanMessage(f"Where is order O-{index}?", id=f"h-{index}", name="ana"),
        AIMessage(
            "",
            id=f"a-{index}",
            tool_calls=[call],
            usage_metadata={
                "input_tokens": 100 + index,
                "output_tokens": 12,
                "total_tokens": 112 + index,
                "input_token_details": {"cache_read": 64},
            },
            response_metadata={"model_name": "gpt-4o", "finish_reason": "tool_calls"},
        ),
        ToolMessage(
            f'{{"order": "O-{index}", "status": "shipped"}}',
            tool_call_id=f"call-{index}",
            id=f"t-{index}",
            artifact={"rows": [index]},
        ),
        AIMessage(f"Order O-{index} has shipped.", id=f"b-{index}"),
    ]


def test_messages_round_trip_exactly(memory: OpticalMemory) -> None:
    history = OpticalChatMessageHistory(memory, "chat", reader="openai")
    sent = [SystemMessage("Be brief.", id="s-0"), *tool_exchange(1)[:3]]
    history.add_messages(sent)
    got = history.messages
    assert got == sent
    assert [message_to_dict(m) for m in got] == [message_to_dict(m) for m in sent]
    assert got[2].usage_metadata == sent[2].usage_metadata  # type: ignore[attr-defined]
    assert got[2].tool_calls == sent[2].tool_calls  # type: ignore[attr-defined]


def test_compacted_history_is_the_optical_view(memory: OpticalMemory) -> None:
    history = OpticalChatMessageHistory(memory, "chat", reader="openai")
    sent = [m for index in range(12) for m in tool_exchange(index)]
    for start in range(0, len(sent), 4):
        history.add_messages(sent[start : start + 4])
    view = history.messages
    assert is_memory_message(view[0])
    assert any(block["type"] == "image_url" for block in view[0].content)  # type: ignore[union-attr]
    assert view[1:] == sent[len(sent) - len(view) + 1 :]  # the recent turns, exactly
    assert history.messages == view  # reading never compacts: same view twice
    segment = memory.store.list_segments("chat")[0]
    recalled = memory.recall("chat", segment.id)
    assert [t.message for t in recalled] == [message_to_dict(m) for m in sent[: len(recalled)]]


def test_one_store_call_per_add(memory: OpticalMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    appends: list[int] = []
    append_turns = memory.store.append_turns

    def counting(thread: str, turns: Any) -> int:
        appends.append(len(turns))
        return append_turns(thread, turns)

    monkeypatch.setattr(memory.store, "append_turns", counting)
    history = OpticalChatMessageHistory(memory, "chat", reader="openai")
    history.add_messages(tool_exchange(1))
    history.add_messages(tool_exchange(2))
    assert appends == [4, 4]


def test_runnable_with_message_history(memory: OpticalMemory) -> None:
    seen: list[list[BaseMessage]] = []

    def chat(messages: list[BaseMessage]) -> AIMessage:
        seen.append(messages)
        return AIMessage(f"Reply {len(seen)}", id=f"r-{len(seen)}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the runnable is deprecated in 1.x
        chain = RunnableWithMessageHistory(
            RunnableLambda(chat),
            lambda session: OpticalChatMessageHistory(memory, session, reader="openai"),
        )
    config = {"configurable": {"session_id": "chat"}}
    ask = "what did we decide about the schema? " * 8
    asks = [f"Question {index}: {ask}" for index in range(8)]
    for index, ask in enumerate(asks):
        chain.invoke([HumanMessage(ask, id=f"q-{index}")], config)
    assert memory.store.count_turns("chat") == 16
    assert is_memory_message(seen[-1][0])
    assert seen[-1][-1] == HumanMessage(asks[-1], id="q-7")
    history = OpticalChatMessageHistory(memory, "chat", reader="openai")
    assert history.messages[-1] == AIMessage("Reply 8", id="r-8")


async def test_async_twins(store_url: str, unique_tenant: str) -> None:
    memory = AsyncOpticalMemory(store_url, tenant=unique_tenant, policy=SMALL, readers=("openai",))
    history = OpticalChatMessageHistory(memory, "chat", reader="openai")
    sent = tool_exchange(3)
    await history.aadd_messages(sent)
    assert await history.aget_messages() == sent
    await history.aclear()
    assert await history.aget_messages() == []
    assert await memory.inspect("chat") is not None
    await memory.aclose()


def test_clear_forgets_the_thread(memory: OpticalMemory) -> None:
    history = OpticalChatMessageHistory(memory, "chat", reader="openai")
    history.add_messages(tool_exchange(1))
    history.clear()
    assert history.messages == []
    assert memory.store.count_turns("chat") == 0


def test_settings_are_checked(memory: OpticalMemory) -> None:
    with pytest.raises(InvalidSettingError):
        OpticalChatMessageHistory(memory, "chat", reader="openai", budget=-1)
    with pytest.raises(UnknownReader):
        OpticalChatMessageHistory(memory, "chat", reader="gpt-9")
    with pytest.raises(InvalidRecordError):
        OpticalChatMessageHistory(memory, "", reader="openai")
