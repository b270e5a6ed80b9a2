"""``OpticalChatMessageHistory``: an optical memory behind ``RunnableWithMessageHistory``.

The legacy LCEL path (``BaseChatMessageHistory`` is deprecated in langchain-core 1.6.4 in
favour of LangGraph persistence, which :class:`OpticalMemoryMiddleware` serves); for code
that still has it. ``add_messages`` appends the messages to the memory in one store call
(then compacts, when a segment is due); ``messages`` is the optical view: one memory
message of pages, segment texts and fact sheet, then the recent turns exactly as added
(tool calls, ids and usage metadata included). Reading never compacts, so the view has the
same length when ``RunnableWithMessageHistory`` enters and leaves a run.

Example:
    >>> history = OpticalChatMessageHistory(memory, "chat-42", reader="anthropic")
    ... # doctest: +SKIP
    >>> history.add_messages([HumanMessage("hi"), AIMessage("hello")])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from optical_memory import readers
from optical_memory.integrations.langchain.memory_calls import (
    AnyMemory,
    MemoryCalls,
    check_budget,
)
from optical_memory.integrations.langchain.messages import context_messages
from optical_memory.store.base import check_name

__all__ = ["OpticalChatMessageHistory"]


class OpticalChatMessageHistory(BaseChatMessageHistory):
    """One conversation of an optical memory as a LangChain chat history.

    Args:
        memory: An ``OpticalMemory`` or ``AsyncOpticalMemory``.
        thread: The conversation (``RunnableWithMessageHistory``'s session id).
        reader: The reader profile the view is made for (``"openai"``, ``"anthropic"``,
            ``"text"`` for a model without image input, ...).
        budget: Most tokens the view may cost the reader (``None``: no limit).

    Raises:
        InvalidSettingError: ``memory`` is not a memory, or ``budget`` is not a positive int.
        InvalidRecordError: ``thread`` is not a valid thread name.
        UnknownReader: ``reader`` names no profile.
    """

    def __init__(
        self, memory: AnyMemory, thread: str, *, reader: str, budget: int | None = None
    ) -> None:
        super().__init__()
        self.calls = MemoryCalls(memory)
        self.thread = check_name(thread, "thread")
        self.reader = readers.get(reader).name
        self.budget = check_budget(budget)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The optical view: the memory message (if any), then the recent turns."""
        context = self.calls.sync.context(self.thread, reader=self.reader, budget=self.budget)
        return context_messages(context)

    async def aget_messages(self) -> list[BaseMessage]:
        """The asyncio twin of :attr:`messages`."""
        context = await self.calls.context(self.thread, reader=self.reader, budget=self.budget)
        return context_messages(context)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the messages, verbatim, in one store call (then compact if due)."""
        self.calls.sync.add(self.thread, list(messages))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """The asyncio twin of :meth:`add_messages`."""
        await self.calls.add(self.thread, list(messages))

    def clear(self) -> None:
        """Forget the conversation: its turns, segments and pages."""
        self.calls.sync.forget(self.thread)

    async def aclear(self) -> None:
        """The asyncio twin of :meth:`clear`."""
        await self.calls.forget(self.thread)
