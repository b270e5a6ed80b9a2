"""The middleware's provider-native blocks, its thread, its tools and its settings."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from optical_memory import OpticalMemory
from optical_memory.errors import InvalidSettingError, UnknownReader
from optical_memory.integrations.langchain import OpticalMemoryMiddleware
from tests.integration_tests.langchain.agent_runs import agent_with, run_turns
from tests.integration_tests.langchain.chat_models import image_model


def pages_sent(call: list[Any]) -> list[dict[str, Any]]:
    blocks = call[0].content if isinstance(call[0].content, list) else []
    return [block for block in blocks if block["type"] in ("image", "image_url")]


def test_anthropic_cache_mark_on_the_last_unchanged_page(sqlite_url: str) -> None:
    with OpticalMemory(sqlite_url, readers=("anthropic",)) as memory:
        model = image_model()
        middleware = OpticalMemoryMiddleware(memory, reader="anthropic")
        run_turns(agent_with(model, middleware, InMemorySaver()), "chat", 70)
    marked_calls = 0
    for before, after in zip(model.calls, model.calls[1:], strict=False):
        old, new = pages_sent(before), pages_sent(after)
        same = 0
        while same < min(len(old), len(new)) and old[same]["base64"] == new[same]["base64"]:
            same += 1
        marks = [i for i, block in enumerate(new) if "extras" in block]
        assert marks == ([same - 1] if same else [])
        marked_calls += bool(marks)
    assert marked_calls > 20


def test_openai_reader_sends_image_url_blocks_with_detail(sqlite_url: str) -> None:
    with OpticalMemory(sqlite_url, readers=("openai",)) as memory:
        model = image_model()
        middleware = OpticalMemoryMiddleware(memory, reader="openai", budget=4000)
        run_turns(agent_with(model, middleware, InMemorySaver()), "chat", 60)
        sent = pages_sent(model.calls[-1])
    assert sent and all(block["type"] == "image_url" for block in sent)
    assert {block["image_url"]["detail"] for block in sent} <= {"low", "high"}
    assert middleware.count_tokens(model.calls[-1]) <= 4000


def test_registers_its_tools_with_the_agent(memory: OpticalMemory) -> None:
    middleware = OpticalMemoryMiddleware(memory, reader="anthropic")
    agent = create_agent(image_model(), middleware=[middleware], checkpointer=InMemorySaver())
    tool_node = agent.get_graph().nodes["tools"].data
    assert {"recall_segment", "search_memory"} <= set(tool_node.tools_by_name)  # type: ignore[union-attr]


def test_a_fixed_thread_needs_no_checkpointer(memory: OpticalMemory) -> None:
    middleware = OpticalMemoryMiddleware(memory, reader="anthropic", thread="fixed")
    agent = create_agent(image_model(), middleware=[middleware])
    agent.invoke({"messages": [HumanMessage("hello")]})
    assert [turn.role for turn in memory.store.get_turns("fixed")] == ["user", "assistant"]


def test_without_a_thread_it_says_what_to_do(memory: OpticalMemory) -> None:
    middleware = OpticalMemoryMiddleware(memory, reader="openai")
    agent = create_agent(image_model(), middleware=[middleware])
    with pytest.raises(InvalidSettingError, match="thread_id"):
        agent.invoke({"messages": [HumanMessage("hello")]})


def test_settings_are_checked(memory: OpticalMemory) -> None:
    with pytest.raises(InvalidSettingError):
        OpticalMemoryMiddleware(memory, reader="openai", budget=0)
    with pytest.raises(UnknownReader):
        OpticalMemoryMiddleware(memory, reader="gpt-9")
    with pytest.raises(InvalidSettingError):
        OpticalMemoryMiddleware("memory.db", reader="openai")  # type: ignore[arg-type]


def test_messages_without_ids_are_added_once(memory: OpticalMemory) -> None:
    """A request built outside the state (no ids) is still stored once per message."""
    model = image_model()
    middleware = OpticalMemoryMiddleware(memory, reader="anthropic", thread="t")
    request = ModelRequest(model=model, messages=[HumanMessage("a"), HumanMessage("b")])
    for _ in range(3):
        middleware.wrap_model_call(
            request, lambda r: ModelResponse(result=[model.invoke(r.messages)])
        )
    roles = [turn.role for turn in memory.store.get_turns("t")]
    assert roles == ["user", "user", "assistant", "assistant", "assistant"]  # 3 replies
