"""Long agent conversations for the middleware tests, and what a checkpointer holds."""

from __future__ import annotations

import sqlite3
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph

from optical_memory import OpticalMemory
from optical_memory.integrations.langchain import memory_message
from optical_memory.integrations.langchain.messages import is_memory_message

PNG_BASE64_HEAD = b"iVBORw0KGgo"  # every base64 PNG starts with these characters


def user_turn(index: int) -> str:
    """The user's message of turn ``index``: prose with exact values to recall."""
    return (
        f"Turn {index}: invoice INV-{10_000 + index} for client {index * 7} was paid on "
        f"2025-03-{index % 28 + 1:02d}, amount {index * 13.5:.2f} EUR. "
        + "We went over the rollout plan, the staging database and who reviews the "
        "migration scripts before Friday. " * 2
    )


def run_turns(agent: CompiledStateGraph[Any, Any, Any, Any], thread: str, turns: int) -> None:
    config = {"configurable": {"thread_id": thread}}
    for index in range(turns):
        agent.invoke({"messages": [HumanMessage(user_turn(index))]}, config)


async def arun_turns(
    agent: CompiledStateGraph[Any, Any, Any, Any], thread: str, turns: int
) -> None:
    config = {"configurable": {"thread_id": thread}}
    for index in range(turns):
        await agent.ainvoke({"messages": [HumanMessage(user_turn(index))]}, config)


class InlinePagesMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """The comparison for the checkpoint size: the same memory and view, but the memory
    message (its base64 pages) is written into the graph state, as agents that inline
    images do. It replaces itself in place (one fixed id), so state holds one copy."""

    def __init__(self, memory: OpticalMemory, reader: str) -> None:
        super().__init__()
        self.memory, self.reader = memory, reader

    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        thread = runtime.execution_info.thread_id
        turns = [m for m in state["messages"] if not is_memory_message(m)]
        self.memory.add(thread, turns)
        message = memory_message(self.memory.context(thread, reader=self.reader))
        if message is None:
            return None
        message.id = "optical-memory-pages"
        return {"messages": [message]}


def stored_bytes(saver: BaseCheckpointSaver[Any]) -> int:
    """Every byte a checkpointer holds: checkpoints, channel blobs and pending writes."""
    if isinstance(saver, InMemorySaver):
        return _bytes_in([saver.storage, saver.blobs, saver.writes])
    conn: sqlite3.Connection = saver.conn  # type: ignore[attr-defined]
    (checkpoints,) = conn.execute(
        "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints"
    ).fetchone()
    (writes,) = conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()
    return int(checkpoints) + int(writes)


def _bytes_in(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return sum(_bytes_in(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_bytes_in(v) for v in value)
    return 0


def latest_checkpoint_bytes(saver: BaseCheckpointSaver[Any], thread: str) -> int:
    """The size of the thread's newest checkpoint, serialised as the saver does."""
    found = saver.get_tuple({"configurable": {"thread_id": thread}})
    assert found is not None
    return len(saver.serde.dumps_typed(found.checkpoint)[1])


def agent_with(
    model: Any,
    middleware: AgentMiddleware,
    saver: BaseCheckpointSaver[Any],  # type: ignore[type-arg]
) -> CompiledStateGraph[Any, Any, Any, Any]:
    return create_agent(model, middleware=[middleware], checkpointer=saver)
