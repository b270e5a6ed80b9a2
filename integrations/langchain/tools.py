"""Tools an agent fetches what the pages no longer show with: recall and search.

``recall_segment(segment_id)`` returns a segment's turns verbatim (the id is in every page
label, ``segment <id>``) and sharpens the segment; ``search_memory(query)`` returns the
turns that match, each with the segment to recall it by. The thread is the tool's
``thread``, else the run's ``thread_id`` (``config["configurable"]["thread_id"]``, as
LangGraph sets it). Both tools return text for the model and, as their artifact, the
turns as LangChain message data (exact: tool calls, ids and metadata included).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from optical_memory.errors import NotFound
from optical_memory.integrations.langchain.memory_calls import MemoryCalls
from optical_memory.memory import SearchHit
from optical_memory.messages import turn_text
from optical_memory.records import Turn

__all__ = [
    "RecallSegmentInput",
    "RecallSegmentTool",
    "SearchMemoryInput",
    "SearchMemoryTool",
    "tool_thread",
]

# A search hit shows this much of its turn; recall_segment gives the rest.
_HIT_CHARS = 600


def tool_thread(thread: str | None, config: RunnableConfig | None) -> str:
    """The thread a tool works on: ``thread``, else the run's ``thread_id``.

    Raises:
        ToolException: Neither is set.
    """
    if thread:
        return thread
    found = ((config or {}).get("configurable") or {}).get("thread_id")
    if not found:
        raise ToolException(
            "no conversation to search: give the tool a thread, or run it with "
            "config={'configurable': {'thread_id': ...}}"
        )
    return str(found)


class _MemoryTool(BaseTool):
    """What both tools share: the memory, the thread, errors handed to the model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any = Field(exclude=True)
    """An ``OpticalMemory`` or ``AsyncOpticalMemory``."""
    thread: str | None = None
    """The conversation; ``None`` takes the run's ``thread_id``."""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True

    @field_validator("memory")
    @classmethod
    def _check_memory(cls, value: Any) -> Any:
        MemoryCalls(value)  # raises InvalidSettingError for anything else
        return value

    @property
    def calls(self) -> MemoryCalls:
        return MemoryCalls(self.memory)


class RecallSegmentInput(BaseModel):
    """Arguments of ``recall_segment``."""

    segment_id: str = Field(
        description="The id in a page label: '483920571038465' in 'segment 483920571038465'."
    )


class RecallSegmentTool(_MemoryTool):
    """Returns the verbatim turns of one segment of the conversation's memory, and
    sharpens that segment (its pages are drawn fresh again).

    Example:
        >>> tool = RecallSegmentTool(memory=memory, thread="chat-42")  # doctest: +SKIP
        >>> tool.invoke({"segment_id": "483920571038465"})  # doctest: +SKIP
        'user: ...'
    """

    name: str = "recall_segment"
    description: str = (
        "Recall the exact text of an earlier part of this conversation shown as a page image "
        "(or a fact line) labelled 'segment <id>'. Use it when a page is too small or blurred "
        "to read, or when an exact value is needed."
    )
    args_schema: type[BaseModel] = RecallSegmentInput

    def _run(self, segment_id: str, config: RunnableConfig) -> tuple[str, list[dict[str, Any]]]:
        thread = tool_thread(self.thread, config)
        try:
            turns = self.calls.sync.recall(thread, segment_id)
        except NotFound as exc:
            raise ToolException(_no_segment(segment_id)) from exc
        return _recalled(turns)

    async def _arun(
        self, segment_id: str, config: RunnableConfig
    ) -> tuple[str, list[dict[str, Any]]]:
        thread = tool_thread(self.thread, config)
        try:
            turns = await self.calls.recall(thread, segment_id)
        except NotFound as exc:
            raise ToolException(_no_segment(segment_id)) from exc
        return _recalled(turns)


def _no_segment(segment_id: str) -> str:
    return f"no segment {segment_id!r} in this conversation; use an id from a page label"


def _recalled(turns: list[Turn]) -> tuple[str, list[dict[str, Any]]]:
    text = "\n\n".join(f"{turn.role}: {turn_text(turn)}" for turn in turns)
    return text, [dict(turn.message) for turn in turns]


class SearchMemoryInput(BaseModel):
    """Arguments of ``search_memory``."""

    query: str = Field(description="Words, names, numbers or ids to look for in earlier turns.")
    limit: int = Field(default=5, ge=1, le=50, description="Most turns to return.")


class SearchMemoryTool(_MemoryTool):
    """Finds turns of the conversation by their words, best first, each with the id of
    the segment to recall it by (``recent`` for a turn still shown verbatim).

    Example:
        >>> SearchMemoryTool(memory=memory, thread="chat-42").invoke({"query": "invoice"})
        ... # doctest: +SKIP
    """

    name: str = "search_memory"
    description: str = (
        "Search the whole earlier conversation for turns containing the given words, "
        "names, numbers or ids. Returns matching turns with the segment id to pass to "
        "recall_segment for their full text."
    )
    args_schema: type[BaseModel] = SearchMemoryInput

    def _run(
        self, query: str, config: RunnableConfig, limit: int = 5
    ) -> tuple[str, list[dict[str, Any]]]:
        thread = tool_thread(self.thread, config)
        return _found(self.calls.sync.search(thread, query, limit))

    async def _arun(
        self, query: str, config: RunnableConfig, limit: int = 5
    ) -> tuple[str, list[dict[str, Any]]]:
        thread = tool_thread(self.thread, config)
        return _found(await self.calls.search(thread, query, limit))


def _found(hits: list[SearchHit]) -> tuple[str, list[dict[str, Any]]]:
    if not hits:
        return "no earlier turn matches", []
    lines = []
    for hit in hits:
        text = turn_text(hit.turn)
        if len(text) > _HIT_CHARS:
            text = text[:_HIT_CHARS] + " [...]"
        where = f"segment {hit.segment_id}" if hit.segment_id else "recent"
        lines.append(f"[{where}] {hit.turn.role}: {text}")
    artifact = [
        {
            "segment_id": hit.segment_id,
            "index": hit.index,
            "score": hit.score,
            "message": dict(hit.turn.message),
        }
        for hit in hits
    ]
    return "\n\n".join(lines), artifact
