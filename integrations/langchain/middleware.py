"""``OpticalMemoryMiddleware``: optical memory for ``langchain.agents.create_agent``.

Before every model call the middleware adds the request's new turns to the memory and
hands the model ``memory.context(...)`` instead of the raw history: older turns as page
images (each labelled with its segment id), the fact sheet, and the recent turns as they
were. Only the model's view changes: the graph state, and so the checkpoint, keeps the
text messages and never an image byte (pages are read from the memory's store at call
time). The middleware registers ``recall_segment`` and ``search_memory`` so the agent can
fetch what the pages no longer show.

Example:
    >>> from langchain.agents import create_agent
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> memory = OpticalMemory("sqlite:///chat.db")  # doctest: +SKIP
    >>> agent = create_agent(  # doctest: +SKIP
    ...     "openai:gpt-4o",
    ...     middleware=[OpticalMemoryMiddleware(memory, reader="openai", budget=8000)],
    ...     checkpointer=InMemorySaver(),
    ... )
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AnyMessage, BaseMessage, message_to_dict

from optical_memory import readers
from optical_memory.context import OpticalContext
from optical_memory.errors import InvalidSettingError
from optical_memory.integrations.langchain.memory_calls import (
    AnyMemory,
    MemoryCalls,
    check_budget,
)
from optical_memory.integrations.langchain.messages import (
    context_messages,
    count_message_tokens,
    is_memory_message,
)
from optical_memory.integrations.langchain.tools import RecallSegmentTool, SearchMemoryTool
from optical_memory.readers import AnthropicRule

__all__ = ["OpticalMemoryMiddleware"]

# The reader a model without image input is given its context for (segments as text).
TEXT_READER = "text"
# Threads whose bookkeeping a middleware keeps (a busy server sees many).
MAX_THREADS = 4096


class OpticalMemoryMiddleware(AgentMiddleware):
    """Shows the model its conversation through an optical memory.

    Args:
        memory: An ``OpticalMemory`` or ``AsyncOpticalMemory`` (the store the turns and
            pages live in).
        reader: The reader profile of the model (``"openai"``, ``"anthropic"``,
            ``"gemini"``, ...): how its pages are drawn and what they cost it.
        budget: Most tokens the context may cost that reader (``None``: no limit).
        thread: The conversation; ``None`` (the default) takes the run's ``thread_id``.

    When the model's profile says it takes no images (``profile["image_inputs"]`` false
    or missing), no page is sent: without a budget the request passes through as it is;
    with one, the model gets the context for a text reader (older segments as their text
    and the fact sheet, within the budget, then the recent turns).

    Pages that did not change since the thread's previous call carry Anthropic's
    ``cache_control`` on the last of them (one breakpoint caches the whole prefix; the
    API allows four) when the reader bills like Anthropic.

    Raises:
        InvalidSettingError: ``memory`` is not a memory, or ``budget`` is not a positive int.
        UnknownReader: ``reader`` names no profile.
    """

    def __init__(
        self,
        memory: AnyMemory,
        *,
        reader: str,
        budget: int | None = None,
        thread: str | None = None,
    ) -> None:
        super().__init__()
        self.calls = MemoryCalls(memory)
        self.profile = readers.get(reader)
        self.reader = self.profile.name
        self.budget = check_budget(budget)
        self.thread = thread
        self.tools = [
            RecallSegmentTool(memory=memory, thread=thread),
            SearchMemoryTool(memory=memory, thread=thread),
        ]
        self._lock = threading.Lock()
        # Per thread, the most recent threads only: ids of the messages already added (a
        # thread forgotten here is added again whole once, and the store skips known ids),
        # and the pages of its last call.
        self._stored: OrderedDict[str, set[str]] = OrderedDict()
        self._shown: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def count_tokens(self, messages: Iterable[Any]) -> int:
        """What ``messages`` cost the middleware's reader, images at its real image cost
        (a ``token_counter`` for ``SummarizationMiddleware`` or ``trim_messages``)."""
        return count_message_tokens(messages, reader=self.profile)

    # --- hooks ----------------------------------------------------------------------

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> ModelResponse:
        """Add the new turns, call the model on the optical context, add its reply."""
        thread = self._thread(request)
        fresh = self._unstored(thread, request.messages)
        if fresh:
            self.calls.sync.add(thread, fresh)
            self._mark_stored(thread, fresh)
        reader = self._reader_for(request)
        if reader is None:
            response = handler(request)
        else:
            context = self.calls.sync.context(thread, reader=reader, budget=self.budget)
            view = self._view(thread, context, request.messages)
            response = handler(request.override(messages=view))
        replies = self._replies(thread, response)
        if replies:
            self.calls.sync.add(thread, replies)
            self._mark_stored(thread, replies)
        return response

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """The asyncio twin of :meth:`wrap_model_call`."""
        thread = self._thread(request)
        fresh = self._unstored(thread, request.messages)
        if fresh:
            await self.calls.add(thread, fresh)
            self._mark_stored(thread, fresh)
        reader = self._reader_for(request)
        if reader is None:
            response = await handler(request)
        else:
            context = await self.calls.context(thread, reader=reader, budget=self.budget)
            view = self._view(thread, context, request.messages)
            response = await handler(request.override(messages=view))
        replies = self._replies(thread, response)
        if replies:
            await self.calls.add(thread, replies)
            self._mark_stored(thread, replies)
        return response

    # --- helpers --------------------------------------------------------------------

    def _thread(self, request: ModelRequest) -> str:
        if self.thread:
            return self.thread
        info = getattr(request.runtime, "execution_info", None)
        thread = getattr(info, "thread_id", None)
        if not thread:
            raise InvalidSettingError(
                "OpticalMemoryMiddleware needs a conversation: run the agent with a "
                "checkpointer and config={'configurable': {'thread_id': ...}}, or pass thread="
            )
        return str(thread)

    def _reader_for(self, request: ModelRequest) -> str | None:
        """The reader to make the context for; ``None`` to pass the request through."""
        profile = getattr(request.model, "profile", None) or {}
        if profile.get("image_inputs"):
            return self.reader
        return None if self.budget is None else TEXT_READER

    def _unstored(self, thread: str, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        """The request's messages this middleware has not added yet, each with an id (a
        message without one gets an id from its place and content, so it is added once)."""
        with self._lock:
            stored = self._stored.get(thread, set())
        fresh = []
        for index, message in enumerate(messages):
            if is_memory_message(message):
                continue
            if not message.id:
                message = message.model_copy(update={"id": _stable_id(index, message)})
            if message.id not in stored:
                fresh.append(message)
        return fresh

    def _replies(self, thread: str, response: ModelResponse) -> list[BaseMessage]:
        """The model's new messages, to store now rather than at the next call (only those
        with ids: chat models name their replies, and the state keeps that id)."""
        with self._lock:
            stored = self._stored.get(thread, set())
        result: list[BaseMessage] = getattr(response, "result", None) or []
        return [m for m in result if m.id and m.id not in stored]

    def _mark_stored(self, thread: str, messages: Sequence[BaseMessage]) -> None:
        with self._lock:
            self._stored.setdefault(thread, set()).update(str(m.id) for m in messages)
            _touch(self._stored, thread)

    def _view(
        self, thread: str, context: OpticalContext, messages: Sequence[BaseMessage]
    ) -> list[AnyMessage]:
        pages = tuple(page.page_id for page in context.pages)
        with self._lock:
            before = self._shown.get(thread, ())
            self._shown[thread] = pages
            _touch(self._shown, thread)
        cache: tuple[str, ...] = ()
        if isinstance(self.profile.image_rule, AnthropicRule):
            same = 0
            while same < min(len(pages), len(before)) and pages[same] == before[same]:
                same += 1
            cache = pages[same - 1 : same] if same else ()
        originals = {str(message.id): message for message in messages if message.id}
        view = context_messages(context, originals=originals, cache_pages=cache)
        return cast("list[AnyMessage]", view)  # messages_from_dict builds the concrete classes


def _touch(threads: OrderedDict[str, Any], thread: str) -> None:
    """Mark ``thread`` as the most recent; drop the least recent beyond the bound."""
    threads.move_to_end(thread)
    while len(threads) > MAX_THREADS:
        threads.popitem(last=False)


def _stable_id(index: int, message: BaseMessage) -> str:
    data = json.dumps(message_to_dict(message), sort_keys=True, default=str)
    return "om-" + hashlib.sha256(f"{index}\n{data}".encode()).hexdigest()[:24]
